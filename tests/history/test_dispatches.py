"""The dispatch rows of Celery runs on a PostgreSQL store: one claim wins, the rest are counted
duplicates; finishing is fenced by the claim token; a claim without a run is handed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wellkept.history import dispatches
from wellkept.history.store import HistoryStore
from wellkept.records import RunRecord
from wellkept.types import RunStatus, Trigger

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _sent(store: HistoryStore, run_id: str) -> None:
    dispatches.create(store, run_id, task="t", target="host", queue="q", payload={"x": 1},
                      now=NOW)


def test_one_claim_wins_and_the_others_are_counted(postgres_db: str) -> None:
    store = HistoryStore(postgres_db)
    _sent(store, "r1")
    token = dispatches.claim(store, "r1", worker="a@h", pid=1, host_id="x", now=NOW)
    assert token is not None
    assert dispatches.claim(store, "r1", worker="b@h", pid=2, host_id="x", now=NOW) is None
    assert dispatches.claim(store, "nope", worker="b@h", pid=2, host_id="x", now=NOW) is None
    got = dispatches.get(store, "r1")
    assert got is not None and (got.status, got.worker, got.duplicates) == ("claimed", "a@h", 1)
    assert not dispatches.finish(store, "r1", "another-token", NOW, "completed")
    assert dispatches.ended(store, ["r1"]) == set()
    assert dispatches.finish(store, "r1", token, NOW, "completed")
    assert dispatches.ended(store, ["r1"]) == {"r1"}
    assert dispatches.claim(store, "r1", worker="c@h", pid=3, host_id="x", now=NOW) is None
    store.close()


def test_claims_without_a_run_are_handed_back_and_orphans_are_closed(postgres_db: str) -> None:
    store = HistoryStore(postgres_db)
    _sent(store, "lost")
    _sent(store, "orphan")
    for run_id in ("lost", "orphan"):
        dispatches.claim(store, run_id, worker="a@h", pid=1, host_id="x", now=NOW)
    record = RunRecord(run_id="orphan", task="t", kind="tick", target="host",
                       status=RunStatus.RUNNING, dry_run=False, trigger=Trigger.API,
                       started_at=NOW)
    store.start_run(record, {})
    (stale,) = dispatches.stale_claims(store)          # "orphan" has its run record
    assert stale.run_id == "lost"
    assert dispatches.requeue_stale(store, stale)
    assert not dispatches.requeue_stale(store, stale)   # the token changed: once only
    assert [d.run_id for d in dispatches.to_republish(store, NOW, timedelta(minutes=1))] == \
        ["lost"]                                        # never published: send it
    dispatches.published(store, "lost", NOW)
    assert dispatches.to_republish(store, NOW, timedelta(minutes=1)) == []
    assert [d.run_id for d in dispatches.to_republish(
        store, NOW + timedelta(minutes=2), timedelta(minutes=1))] == ["lost"]
    store.finish_run(RunRecord(**{**record.__dict__, "status": RunStatus.ORPHANED}))
    assert dispatches.ended(store, ["orphan"]) == {"orphan"}
    assert dispatches.close_ended(store, NOW) == 1
    closed = dispatches.get(store, "orphan")
    assert closed is not None and (closed.status, closed.outcome) == ("finished", "orphaned")
    store.close()
