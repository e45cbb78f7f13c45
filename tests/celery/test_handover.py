"""A coordinator that stops while a slot's run still waits at the broker: the next coordinator
continues the slot without sending the run again, so it executes once."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.celery.conftest import WriteCelery
from tests.celery.workers import Worker
from tests.coordinator.helpers import ledger
from tests.helpers import wait_for
from wellkept.clock import ManualClock
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.history import dispatches, schedules
from wellkept.types import RunStatus


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_slot_run_still_queued_at_a_handover_runs_once(celery_config: WriteCelery) -> None:
    cfg = celery_config("""\
        tasks: {t: {kind: tick}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [t]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 0, 30))
    first = Coordinator(Engine(load_config(cfg)), clock=clock)
    first.executor.start()
    first.tick()                                     # first sight: nothing due
    clock.set(at(2026, 11, 2, 10, 0, 5))
    first.tick()                                     # the 10:00 slot: sent, no worker yet
    store = first.store

    def sent() -> list[dispatches.Dispatch]:
        (slot,) = schedules.list_slots(store, schedule="hourly")
        found = [dispatches.get(store, run_id) for run_id in slot["run_ids"]]
        return [d for d in found if d is not None]

    assert wait_for(lambda: [d.publish_count for d in sent()] == [1], 30)
    first.shutdown()                                 # stops waiting; the message stays queued
    (waiting,) = sent()
    assert waiting.status == "queued"
    second = Coordinator(Engine(load_config(cfg)), clock=clock)
    second.executor.start()
    try:
        second.tick()                                # continues the slot its predecessor left
        second.pool.wait_idle(5)                     # (waiting for a run it sent, if any)
        worker = Worker(cfg, "w").wait_ready()
        assert second.pool.wait_idle(60), worker.text()
        assert wait_for(lambda: all(d.status == "finished" for d in sent()), 60), worker.text()
    finally:
        second.shutdown()
    assert [row[1] for row in ledger(cfg.parent)] == [waiting.run_id]   # executed once
    record = store.get_run(waiting.run_id)
    assert record is not None and record.status is RunStatus.COMPLETED
    assert [d.run_id for d in sent()] == [waiting.run_id]               # not sent twice
