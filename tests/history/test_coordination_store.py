"""The coordinator's tables on both store backends: slot claims, leases, requests, the
recovery queue, figures and pruning."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.history.test_store import record
from wellkept.config_coordinator import RecoverySettings
from wellkept.history import coordination, figures, recovery_log, schedules
from wellkept.history.pruning import prune
from wellkept.history.schema import HEAD_REVISION
from wellkept.history.store import HistoryStore
from wellkept.scheduler import SlotCause, SlotDecision, SlotOutcome
from wellkept.types import RunStatus

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


def test_the_0003_tables_exist(store: HistoryStore) -> None:
    with store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        columns = {c["name"] for c in sa.inspect(conn).get_columns("wk_runs")}
    assert {"wk_schedule_slots", "wk_coordinators", "wk_leases", "wk_requests",
            "wk_recovery_queue", "wk_recovery_attempts", "wk_emergency_state"} <= names
    assert {"progress_at", "deadline_at", "priority", "recovery_of"} <= columns


_CLAIM = """
import sys
from datetime import datetime
from wellkept.history import schedules
from wellkept.history.store import HistoryStore
from wellkept.scheduler import SlotDecision, SlotOutcome
store = HistoryStore(sys.argv[1])
won = 0
for minute in range(40):
    d = SlotDecision(datetime.fromisoformat(f"2026-11-02T12:{minute:02d}:00+00:00"),
                     SlotOutcome.QUEUED)
    won += schedules.claim_slot(store, "s", d, d.slot_at, sys.argv[2])
print(won)
"""


def test_each_slot_is_claimed_by_exactly_one_of_several_processes(store: HistoryStore) -> None:
    store.list_runs()  # migrate first, so the racers race on claims, not on the schema
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIM, store.url, f"c{i}"],
                              stdout=subprocess.PIPE, text=True) for i in range(3)]
    wins = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(wins) == 40
    slots = schedules.list_slots(store, schedule="s", limit=100)
    assert len(slots) == 40 and len({s["slot_at"] for s in slots}) == 40


def test_slot_lifecycle_and_schedule_state(store: HistoryStore) -> None:
    slot = SlotDecision(NOW, SlotOutcome.QUEUED)
    assert schedules.claim_slot(store, "nightly", slot, NOW, "c1")
    assert not schedules.claim_slot(store, "nightly", slot, NOW, "c2")
    assert schedules.in_progress(store, "nightly")
    schedules.slot_started(store, "nightly", NOW, NOW + timedelta(seconds=2), "c1")
    schedules.slot_add_run(store, "nightly", NOW, "r1")
    schedules.slot_add_run(store, "nightly", NOW, "r1")
    schedules.slot_finished(store, "nightly", NOW, NOW + timedelta(minutes=1), "completed")
    row = schedules.get_slot(store, "nightly", NOW)
    assert row is not None
    assert (row["outcome"], row["run_ids"], row["late_seconds"], row["status"]) == \
        ("ran", ["r1"], 2.0, "completed")
    assert not schedules.in_progress(store, "nightly")
    assert schedules.set_paused(store, "nightly", True, NOW, "ops@h")
    assert not schedules.set_paused(store, "nightly", True, NOW, "ops@h")
    state = schedules.states(store)["nightly"]
    assert state.paused and state.paused_by == "ops@h" and state.last_status == "completed"
    missed = SlotDecision(NOW - timedelta(days=1), SlotOutcome.MISSED, SlotCause.COALESCED,
                          "down", covers=3)
    schedules.claim_slot(store, "nightly", missed, NOW, "c1")
    assert figures.missed_slot_counts(store) == {"nightly": 3}
    assert figures.missed_slots(store)[0]["cause"] == "coalesced"


def test_the_leader_lease_has_one_holder(store: HistoryStore) -> None:
    ttl = timedelta(seconds=30)
    assert coordination.acquire_lease(store, "a", NOW, ttl)
    assert not coordination.acquire_lease(store, "b", NOW + timedelta(seconds=5), ttl)
    assert coordination.acquire_lease(store, "a", NOW + timedelta(seconds=10), ttl)  # renewal
    assert not coordination.acquire_lease(store, "b", NOW + timedelta(seconds=39), ttl)
    assert coordination.acquire_lease(store, "b", NOW + timedelta(seconds=41), ttl)  # expired
    assert coordination.acquire_lease(store, "a", NOW + timedelta(seconds=42), ttl,
                                      steal_from="b")  # a holder known dead
    coordination.release_lease(store, "a", NOW + timedelta(seconds=43))
    assert coordination.acquire_lease(store, "b", NOW + timedelta(seconds=43), ttl)
    lease = coordination.get_lease(store)
    assert lease is not None and lease.holder == "b"


def test_requests_are_claimed_once(store: HistoryStore) -> None:
    rid = coordination.add_request(store, "schedule", "nightly", "manual", NOW, "ops@h")
    assert [r["id"] for r in coordination.claim_requests(store, "c1", NOW)] == [rid]
    assert coordination.claim_requests(store, "c2", NOW) == []
    coordination.finish_request(store, rid, NOW, "completed", ["r1"])
    row = coordination.get_request(store, rid)
    assert row is not None and row["status"] == "completed" and row["run_ids"] == ["r1"]


def test_recovery_queue_claims_priorities_and_figures(store: HistoryStore) -> None:
    low, high = record("purge"), record("backup")
    for r in (low, high):
        store.start_run(r, {}, lease_until=datetime.now(UTC) - timedelta(minutes=1))
    policy = RecoverySettings()
    for r, priority in ((low, 1), (high, 7)):
        state = recovery_log.get_state(store, r.run_id)
        assert state is not None
        assert recovery_log.close_interrupted(store, state, NOW, RunStatus.ORPHANED, "gone")
        assert not recovery_log.close_interrupted(store, state, NOW, RunStatus.ORPHANED, "x")
        recovery_log.enqueue(store, state.__class__(**{**state.__dict__, "priority": priority}),
                             "orphaned", "gone", NOW)
    queue = recovery_log.queue(store)
    assert [e.run_id for e in queue] == [high.run_id, low.run_id]
    assert recovery_log.claim(store, high.run_id, "c1", NOW)
    assert not recovery_log.claim(store, high.run_id, "c2", NOW)
    assert recovery_log.claim(store, high.run_id, "c2", NOW + timedelta(minutes=6))  # stale
    assert figures.recovery_queue_depth(store) == 2
    attempt = recovery_log.start_attempt(
        store, run_id=high.run_id, recovery_run_id=str(uuid.uuid4()), task="backup", attempt=2,
        strategy="resume", reason="r", interrupted_at=NOW - timedelta(seconds=30),
        started_at=NOW, host="h", pid=1)
    recovery_log.finish_attempt(store, attempt, NOW + timedelta(seconds=15), "completed")
    assert figures.recovery_counts(store) == {("backup", "resume"): 1}
    health = figures.recovery_health(store, policy, now=NOW + timedelta(minutes=1))
    assert health["health"]["orphaned_task_count"] == 2
    assert health["health"]["recovery_queue_depth"] == 2
    assert health["health"]["overall_health"] == "degraded"
    m = health["metrics"]
    assert m["task_state_distribution"] == {"orphaned": 2}
    assert (m["recovery_success_rate_24h"], m["successful_recoveries_24h"],
            m["average_recovery_time_seconds"]) == (100.0, 1, 45.0)


def test_stuck_runs_are_alive_but_past_their_time_limit(store: HistoryStore) -> None:
    now = datetime.now(UTC)
    r = record("vacuum", started=now - timedelta(hours=3))
    store.start_run(r, {}, lease_until=now + timedelta(seconds=60),
                    deadline_at=now - timedelta(hours=2))
    health = figures.recovery_health(store, RecoverySettings(), now=now)["health"]
    assert (health["stuck_task_count"], health["overall_health"]) == (1, "unhealthy")


def test_pruning_keeps_what_is_still_in_use(store: HistoryStore) -> None:
    old = NOW - timedelta(days=100)
    done, going, queued = (record("a", RunStatus.COMPLETED, old), record("b", started=old),
                           record("c", RunStatus.ORPHANED, old))
    for r in (done, going, queued):
        store.start_run(r, {})
    store.add_checkpoint(going.run_id, 1, "x", 10, {})
    state = recovery_log.get_state(store, queued.run_id)
    assert state is not None
    recovery_log.enqueue(store, state, "orphaned", "", old)
    schedules.claim_slot(store, "s", SlotDecision(old, SlotOutcome.MISSED), old, "c")
    counts = prune(store, NOW - timedelta(days=90))
    assert counts["runs"] == 1 and counts["slots"] == 1
    assert store.get_run(done.run_id) is None
    assert store.get_run(going.run_id) is not None and store.get_run(queued.run_id) is not None


def test_a_0002_store_with_runs_upgrades_to_0003(store: HistoryStore) -> None:
    """A store an older wellkept left, with a run in flight: the migration keeps the run, and
    recovery sees it (it never heartbeat a lease, so its start time decides)."""
    from alembic import command
    from alembic.config import Config

    engine = store._create_engine()
    cfg = Config()
    cfg.set_main_option("script_location", "wellkept.history:migrations")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO wk_runs (run_id, task, kind, target, status, dry_run, trigger, "
            "started_at, message, metrics, details, errors, params, host, pid, attempt) VALUES "
            "('old-run', 'purge', 'cleanup', 'app', 'running', false, 'manual', :at, '', "
            "'{}', '{}', '[]', '{}', 'h', 1, 1)"), {"at": NOW - timedelta(hours=1)})
    engine.dispose()
    (state,) = recovery_log.running(store)          # first use: migrated to the head
    assert state.run_id == "old-run" and state.lease_until is None and state.priority == 0
    assert state.lease_expired(NOW, timedelta(seconds=60))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
            == HEAD_REVISION
