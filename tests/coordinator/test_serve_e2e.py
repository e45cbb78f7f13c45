"""`wellkept serve` as a real process: kill -9 and recovery, SIGTERM, pause, status and
triggers through the CLI. Effects are checked in the store and in the task's own ledger."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from tests.coordinator.helpers import Serve, ledger, store_of, write
from tests.helpers import make_app_db, run_cli, sql, wait_for
from wellkept.history import recovery_log, schedules
from wellkept.types import RunStatus, Trigger

STEPS = """\
tasks:
  job: {kind: steps, items: 60, every: 10, pause: 0.1}
schedules:
  yearly: {cron: "0 0 1 1 *", tasks: [job]}
"""


def runs_of(store, task):  # type: ignore[no-untyped-def]
    return sorted(store.list_runs(limit=1000, task=task), key=lambda r: r.started_at)


def test_kill_9_of_the_coordinator_mid_task_resumes_from_the_checkpoint(
        plugin_dir: Path) -> None:
    cfg = write(plugin_dir, STEPS)
    store = store_of(cfg)
    first = Serve(cfg, "first")
    first.wait_leader(store)
    trigger = run_cli("-c", str(cfg), "schedule", "trigger", "yearly", "-o", "json")
    assert trigger.returncode == 0, trigger.stderr
    assert json.loads(trigger.stdout)["queued"] is True      # the coordinator runs it
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 26, 30), first.text()
    first.kill()                                             # kill -9, mid-task
    (killed,) = runs_of(store, "job")
    assert killed.status is RunStatus.RUNNING                # nobody closed it
    done_before = {row[0] for row in ledger(plugin_dir)}
    checkpoint = store.latest_checkpoint(killed.run_id)
    assert checkpoint is not None
    resumed_at = checkpoint["data"]["next"]

    second = Serve(cfg, "second")
    assert wait_for(lambda: any(r.trigger is Trigger.RECOVERY and r.status.is_final
                                for r in runs_of(store, "job")), 60), second.text()
    assert second.stop() == 0, second.text()

    original, recovery = runs_of(store, "job")
    assert original.run_id == killed.run_id and original.status is RunStatus.ORPHANED
    assert "is gone" in original.message                    # found dead at once, by pid
    assert recovery.status is RunStatus.COMPLETED, recovery.message
    info = recovery.details["recovery"]
    assert (info["strategy"], info["of"], info["attempt"]) == ("resume", killed.run_id, 2)
    assert recovery.details["resumed_from"]["percent"] == 100.0 * resumed_at / 60
    assert recovery.metrics["started_at_item"] == resumed_at
    items = Counter(row[0] for row in ledger(plugin_dir))
    assert set(items) == set(range(60))                      # it finished
    twice = sorted(i for i, n in items.items() if n > 1)
    # only the work after the last checkpoint was done again, less than one interval
    assert twice == sorted(i for i in done_before if i >= resumed_at)
    assert len(twice) < 10
    (attempt,) = recovery_log.attempts(store, run_id=killed.run_id)
    assert (attempt["strategy"], attempt["outcome"], attempt["recovery_run_id"]) == \
        ("resume", "completed", recovery.run_id)
    assert recovery_log.queue(store) == []


def test_sigterm_mid_task_stops_at_a_checkpoint_and_leaves_nothing_orphaned(
        plugin_dir: Path) -> None:
    db = make_app_db(plugin_dir / "app.sqlite3", old=3000, fresh=20)
    cfg = write(plugin_dir, """\
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        tasks:
          purge: {kind: cleanup, target: app, table: events, date_column: created_at,
                  retention: 30d, batch_size: 10, target_batch_seconds: 0, sleep: 50ms}
        schedules: {yearly: {cron: "0 0 1 1 *", tasks: [purge]}}
        coordinator: {heartbeat: 1s, leader_lease: 5s, shutdown_grace: 20s}
        """)
    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    assert run_cli("-c", str(cfg), "schedule", "trigger", "yearly").returncode == 0
    old = lambda: sql(db, "SELECT count(*) FROM events WHERE kind = 'old'")[0][0]  # noqa: E731
    assert wait_for(lambda: old() < 2800, 30), serve.text()
    t0 = time.monotonic()
    assert serve.stop() == 0, serve.text()                 # SIGTERM
    assert time.monotonic() - t0 < 15                      # it stopped at the next checkpoint
    assert not serve.pidfile.exists()
    left = old()
    assert 0 < left < 2800
    (run,) = runs_of(store, "purge")
    assert run.status is RunStatus.PARTIAL_FAILURE and run.details["incomplete"]
    assert "stopped at a checkpoint (the coordinator is shutting down)" in run.message
    assert recovery_log.running(store) == []               # nothing left running/orphaned
    (queued,) = recovery_log.queue(store)
    assert (queued.run_id, queued.reason) == (run.run_id, "shutdown")
    from wellkept.history import coordination

    lease = coordination.get_lease(store)
    assert lease is not None and lease.lease_until.timestamp() < time.time()  # released
    assert coordination.list_coordinators(store)[0].state == "stopped"

    again = Serve(cfg, "again")                             # the next start resumes it
    assert wait_for(lambda: old() == 0 and len(runs_of(store, "purge")) == 2
                    and runs_of(store, "purge")[1].status.is_final, 60), again.text()
    assert again.stop() == 0
    recovered = runs_of(store, "purge")[1]
    assert recovered.status is RunStatus.COMPLETED, recovered.message
    assert recovered.details["recovery"]["strategy"] == "resume"
    assert recovered.metrics["rows_deleted"] == left
    assert sql(db, "SELECT count(*) FROM events")[0][0] == 20
    assert recovery_log.queue(store) == []


def test_pause_and_resume_a_running_coordinators_schedule(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick}}
        schedules: {every-second: {cron: "* * * * * *", tasks: [t]}}
        """)
    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 2, 20), serve.text()
    assert run_cli("-c", str(cfg), "schedule", "pause", "every-second").returncode == 0
    time.sleep(1.5)       # a slot already claimed when the pause landed may still run
    during = len(ledger(plugin_dir))
    time.sleep(3)
    assert len(ledger(plugin_dir)) == during                 # no runs while paused
    assert run_cli("-c", str(cfg), "schedule", "resume", "every-second").returncode == 0
    assert wait_for(lambda: len(ledger(plugin_dir)) >= during + 2, 20), serve.text()
    assert serve.stop() == 0
    outcomes = Counter((s["outcome"], s["cause"])
                       for s in schedules.list_slots(store, schedule="every-second"))
    assert outcomes[("skipped", "paused")] >= 3
    ran = [s for s in schedules.list_slots(store, schedule="every-second", limit=1000)
           if s["outcome"] == "ran"]
    assert len(ran) == len(ledger(plugin_dir))


def test_status_and_trigger_with_and_without_a_coordinator(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick, hold: 3}}
        schedules: {yearly: {cron: "0 0 1 1 *", tasks: [t]}}
        """)
    inline = run_cli("-c", str(cfg), "schedule", "trigger", "yearly", "-o", "json")
    assert inline.returncode == 0, inline.stderr        # no coordinator: it ran right here
    assert json.loads(inline.stdout)["results"][0]["status"] == "completed"
    idle = json.loads(run_cli("-c", str(cfg), "status", "-o", "json").stdout)
    assert idle["coordinator"]["running"] is False
    assert idle["last_results"][0]["task"] == "t"

    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    queued = run_cli("-c", str(cfg), "schedule", "trigger", "yearly", "--wait", "-o", "json",
                     timeout=60)
    assert queued.returncode == 0, queued.stderr
    body = json.loads(queued.stdout)
    assert body["queued"] and body["status"] == "completed" and len(body["run_ids"]) == 1
    run_cli("-c", str(cfg), "schedule", "trigger", "yearly")
    assert wait_for(lambda: bool(recovery_log.running(store)), 20)
    busy = json.loads(run_cli("-c", str(cfg), "status", "--schedules", "-o", "json").stdout)
    assert busy["coordinator"]["running"] and busy["coordinator"]["leader"]["pid"] == serve.pid
    assert busy["running"][0]["task"] == "t" and busy["running"][0]["pid"] == serve.pid
    assert busy["schedules"][0]["id"] == "yearly"
    assert busy["recovery"]["health"]["overall_health"] == "healthy"
    text = run_cli("-c", str(cfg), "status").stdout
    assert "coordinator: running" in text and "running" in text
    assert serve.stop() == 0                    # the held task finishes within the grace
    assert all(r.status is RunStatus.COMPLETED for r in runs_of(store, "t"))


def test_a_second_coordinator_on_the_same_pidfile_is_refused(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, STEPS)
    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    clash = run_cli("-c", str(cfg), "serve", "--pidfile", str(serve.pidfile), timeout=30)
    assert clash.returncode == 1 and f"names process {serve.pid}" in clash.stderr
    assert serve.stop() == 0


def test_a_coordinator_down_for_three_slots_makes_one_coalesced_run_and_two_missed(
        plugin_dir: Path) -> None:
    """Real processes: `wellkept serve` stopped, three slots pass, a new one starts."""
    from datetime import UTC, datetime, timedelta

    from wellkept.schedule import CronSpec

    cron = "*/10 * * * * *"                                  # a slot every 10 s
    cfg = write(plugin_dir, f"""\
        tasks: {{t: {{kind: tick}}}}
        schedules: {{tens: {{cron: "{cron}", tasks: [t]}}}}
        """)
    store = store_of(cfg)
    first = Serve(cfg, "first")
    first.wait_leader(store)
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 1, 30), first.text()
    assert first.stop() == 0, first.text()
    cursor = schedules.states(store)["tens"].evaluated_through  # its scheduler's last tick
    assert cursor is not None
    s1, s2, s3 = CronSpec.parse(cron).between(cursor, cursor + timedelta(seconds=30))
    # start the next coordinator just after the third slot: it first ticks before the fourth
    time.sleep(max(0.0, (s3 - datetime.now(UTC)).total_seconds()) + 0.2)
    second = Serve(cfg, "second")
    second.wait_leader(store)

    def settled() -> bool:
        row = schedules.get_slot(store, "tens", s3)
        return row is not None and row["finished_at"] is not None

    assert wait_for(settled, 30), second.text()
    assert second.stop() == 0, second.text()
    slots = {r["slot_at"]: r for r in schedules.list_slots(store, schedule="tens", since=s1)}
    assert [(slots[s]["outcome"], slots[s]["cause"]) for s in (s1, s2, s3)] == [
        ("missed", "coalesced"), ("missed", "coalesced"), ("ran", None)], second.text()
    assert all("coalesced into the run of" in slots[s]["detail"] for s in (s1, s2))
    down = [r for r in runs_of(store, "t") if r.scheduled_for in (s1, s2, s3)]
    assert [(r.scheduled_for, r.trigger, r.status) for r in down] == [
        (s3, Trigger.SCHEDULE, RunStatus.COMPLETED)]             # one run for the three


def test_right_after_a_kill_9_the_dead_coordinator_is_not_reported_running(
        plugin_dir: Path) -> None:
    """Its record still looks fresh (for up to leader_lease), but its process is gone: status
    must not call it running, and a trigger must run here rather than queue a request that
    nobody takes (with --wait it waited for ever)."""
    cfg = write(plugin_dir, """\
        coordinator: {heartbeat: 1s, leader_lease: 30s, reap_every: 1s}
        tasks: {t: {kind: tick}}
        schedules: {yearly: {cron: "0 0 1 1 *", tasks: [t]}}
        """)
    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    serve.kill()                                        # its lease runs for 30 s more
    state = json.loads(run_cli("-c", str(cfg), "status", "-o", "json").stdout)
    assert state["coordinator"]["running"] is False, state["coordinator"]
    assert state["coordinator"]["leader"] is None
    assert state["coordinator"]["last_seen"]["pid"] == serve.pid
    trigger = run_cli("-c", str(cfg), "schedule", "trigger", "yearly", "--wait", "-o", "json",
                      timeout=60)
    assert trigger.returncode == 0, trigger.stderr
    body = json.loads(trigger.stdout)
    assert "queued" not in body and body["results"][0]["status"] == "completed"
    assert len(ledger(plugin_dir)) == 1
