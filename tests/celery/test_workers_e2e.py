"""Runs on real Celery workers (subprocesses), against the real Redis and the real RabbitMQ:
records and effects, kill -9 mid-cleanup and recovery on another worker, target locks across
workers, a message published twice. Effects are checked in the target and the store."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path

from tests.celery.conftest import WriteCelery
from tests.celery.workers import Worker
from tests.coordinator.helpers import Serve, ledger, store_of
from tests.helpers import make_app_db, run_cli, sql, wait_for
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.history import dispatches, recovery_log
from wellkept.records import RunRecord
from wellkept.types import RunStatus, Trigger

PURGE = """\
targets: {{app: {{url: "sqlite:///app.sqlite3"}}}}
tasks:
  purge: {{kind: cleanup, target: app, table: events, date_column: created_at, retention: 30d,
          batch_size: {batch}, target_batch_seconds: 0, sleep: {sleep}}}
  t: {{kind: tick}}
schedules:
  yearly: {{cron: "0 0 1 1 *", tasks: [purge, t]}}
"""


def runs_of(store, task):  # type: ignore[no-untyped-def]
    return sorted(store.list_runs(limit=1000, task=task), key=lambda r: r.started_at)


def old_rows(db: Path) -> int:
    return int(sql(db, "SELECT count(*) FROM events WHERE kind = 'old'")[0][0])


def test_scheduled_runs_execute_on_the_worker(celery_config: WriteCelery,
                                              tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=300, fresh=20)
    cfg = celery_config(PURGE.format(batch=100, sleep="0s"))
    store = store_of(cfg)
    worker = Worker(cfg, "one").wait_ready()
    serve = Serve(cfg)
    try:
        serve.wait_leader(store)
        done = run_cli("-c", str(cfg), "schedule", "trigger", "yearly", "--wait", "-o", "json",
                       timeout=120)
        assert done.returncode == 0, done.stderr + serve.text() + worker.text()
    finally:
        assert serve.stop() == 0, serve.text()
    (purge,) = runs_of(store, "purge")
    (tick,) = runs_of(store, "t")
    assert purge.status is RunStatus.COMPLETED and tick.status is RunStatus.COMPLETED
    assert purge.metrics["rows_deleted"] == 300
    assert (old_rows(db), sql(db, "SELECT count(*) FROM events")[0][0]) == (0, 20)
    for run in (purge, tick):                       # executed by the worker, not by serve
        assert worker.owns(run.pid) and run.pid != serve.pid
        assert run.details["celery"]["worker"].startswith("one@")
        assert run.trigger is Trigger.MANUAL and run.schedule == "yearly"   # a trigger
        sent = dispatches.get(store, run.run_id)
        assert sent is not None
        assert (sent.status, sent.outcome, sent.duplicates, sent.publish_count) == \
            ("finished", "completed", 0, 1)
    assert [row[4] for row in ledger(tmp_path)] == [tick.pid]
    assert "duplicate" not in worker.text()


def test_kill_9_of_the_worker_mid_cleanup_resumes_on_another_worker(
        celery_config: WriteCelery, tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=1200, fresh=20)
    cfg = celery_config(PURGE.format(batch=10, sleep="30ms"))
    store = store_of(cfg)
    first = Worker(cfg, "first").wait_ready()
    serve = Serve(cfg)
    try:
        serve.wait_leader(store)
        assert run_cli("-c", str(cfg), "schedule", "trigger", "yearly").returncode == 0
        assert wait_for(lambda: old_rows(db) < 1000, 60), serve.text() + first.text()
        (killed,) = runs_of(store, "purge")
        assert first.owns(killed.pid)
        import os
        import signal

        os.kill(killed.pid, signal.SIGKILL)         # kill -9 of the worker child, mid-task
        first.kill()                                # and of the rest of that worker
        left = old_rows(db)
        checkpoint = store.latest_checkpoint(killed.run_id)
        assert checkpoint is not None and 0 < left < 1200
        second = Worker(cfg, "second").wait_ready()
        assert wait_for(lambda: any(r.trigger is Trigger.RECOVERY and r.status.is_final
                                    for r in runs_of(store, "purge")), 90), \
            serve.text() + second.text()
        assert wait_for(lambda: len(runs_of(store, "t")) == 1 and
                        runs_of(store, "t")[0].status.is_final, 60), serve.text()
    finally:
        assert serve.stop() == 0, serve.text()
    original, recovery = runs_of(store, "purge")
    assert original.run_id == killed.run_id and original.status is RunStatus.ORPHANED
    assert "is gone" in original.message
    assert recovery.status is RunStatus.COMPLETED, recovery.message
    info = recovery.details["recovery"]
    assert (info["strategy"], info["of"], info["attempt"]) == ("resume", killed.run_id, 2)
    assert recovery.details["resumed_from"]["name"] == checkpoint["name"] or \
        recovery.details["resumed_from"]["percent"] >= checkpoint["percent"]
    assert recovery.details["celery"]["worker"].startswith("second@")
    assert second.owns(recovery.pid)
    # exact counts: what the killed run left is what the recovery deleted, and no fresh row
    assert recovery.metrics["rows_deleted"] == left
    assert (old_rows(db), sql(db, "SELECT count(*) FROM events")[0][0]) == (0, 20)
    (attempt,) = recovery_log.attempts(store, run_id=killed.run_id)   # recovered once
    assert (attempt["strategy"], attempt["outcome"], attempt["recovery_run_id"]) == \
        ("resume", "completed", recovery.run_id)
    assert recovery_log.queue(store) == []
    lost = dispatches.get(store, killed.run_id)
    assert lost is not None and (lost.status, lost.outcome) == ("finished", "orphaned")
    (tick,) = runs_of(store, "t")                   # the slot went on after its first task
    assert tick.status is RunStatus.COMPLETED


def test_two_workers_never_overlap_on_one_target(celery_config: WriteCelery) -> None:
    cfg = celery_config("""\
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        tasks:
          first: {kind: exclusive, target: app, hold: 1.5}
          second: {kind: exclusive, target: app, hold: 1.5}
        """)
    (cfg.parent / "app.sqlite3").touch()
    workers = [Worker(cfg, "a").wait_ready(), Worker(cfg, "b").wait_ready()]
    coord = Coordinator(Engine(load_config(cfg)))
    coord.executor.start()
    try:
        ids = coord.run_now(["first"]) + coord.run_now(["second"])   # two jobs, at once
        assert coord.pool.wait_idle(90), [w.text() for w in workers]
    finally:
        coord.executor.close()
    store = coord.store
    records = [store.get_run(i) for i in ids]
    assert all(r is not None and r.status is RunStatus.COMPLETED for r in records)
    spans = sorted(sql(cfg.parent / "spans.sqlite3", "SELECT started, ended, pid FROM spans"))
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]                # one ended before the other began
    # prefetch 1: each worker took one, and the second waited for the target lock
    owners = {w.name for r in records for w in workers if r is not None and w.owns(r.pid)}
    assert owners == {"a", "b"}
    waited = max(r.details["lock"]["waited_seconds"] for r in records if r is not None)
    assert waited >= 1.0


def test_the_same_message_published_twice_runs_once(celery_config: WriteCelery) -> None:
    cfg = celery_config("tasks: {t: {kind: tick}}\n")
    engine = Engine(load_config(cfg))
    coord = Coordinator(engine)
    executor = coord.executor
    request = replace(engine.resolve(["t"])[0], run_id=str(uuid.uuid4()))
    assert request.run_id is not None
    results: list[RunRecord] = []
    sender = threading.Thread(target=lambda: results.append(
        executor.run(request, trigger=Trigger.API)))
    sender.start()
    store = engine.store
    assert wait_for(lambda: (d := dispatches.get(store, request.run_id)) is not None
                    and d.publish_count == 1, 30)
    sent = dispatches.get(store, request.run_id)
    assert sent is not None
    assert executor.publish(request.run_id, sent.queue, sent.payload)   # the duplicate
    workers = [Worker(cfg, "a").wait_ready(), Worker(cfg, "b").wait_ready()]
    sender.join(60)
    assert results and results[0].status is RunStatus.COMPLETED, [w.text() for w in workers]
    assert wait_for(lambda: (d := dispatches.get(store, request.run_id)) is not None
                    and d.duplicates == 1, 30)
    assert [row[1] for row in ledger(cfg.parent)] == [request.run_id]   # executed once
    logs = "".join(w.text() for w in workers)
    assert f"run {request.run_id} of t on host: duplicate message ignored" in logs
    assert "the run is already" in logs
    executor.close()
