"""Run leases: a run that never heartbeat falls back to its start time, and a worker that
cannot renew its lease (its state store is gone) stops its task, as does one whose target lock
went to another process."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.coordinator.helpers import ledger, write
from tests.helpers import wait_for
from wellkept.history.recovery_log import RunState
from wellkept.types import RunStatus

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


def state(**kw: Any) -> RunState:
    base = dict(run_id="r", task="t", kind="k", target="x", status="running", trigger="manual",
                dry_run=False, attempt=1, host="h", host_id=None, pid=1,
                started_at=NOW - timedelta(minutes=5), finished_at=None, heartbeat_at=None,
                lease_until=None, deadline_at=None, progress_percent=None, progress_step=None,
                progress_at=None, priority=0, params={}, schedule=None, scheduled_for=None,
                recovery_of=None)
    return RunState(**{**base, **kw})  # type: ignore[arg-type]


def test_a_run_that_never_heartbeat_falls_back_to_its_start_time() -> None:
    lease = timedelta(seconds=60)
    assert state().lease_expired(NOW, lease)                                  # 5 min old
    assert not state(started_at=NOW - timedelta(seconds=30)).lease_expired(NOW, lease)
    assert not state(heartbeat_at=NOW - timedelta(seconds=10)).lease_expired(NOW, lease)
    assert state(lease_until=NOW - timedelta(seconds=1),
                 heartbeat_at=NOW).lease_expired(NOW, lease)          # the lease decides
    assert not state(lease_until=NOW + timedelta(seconds=1)).lease_expired(NOW, lease)


def _hold(plugin_dir: Path, state: str, lease: str, kind: str, hold: int
          ) -> tuple[threading.Thread, dict[str, Any]]:
    """A run of task `hold` (`kind` holding for `hold` seconds) in a thread, on the store
    `state`; its record lands in the box under "record"."""
    from wellkept.config import load_config
    from wellkept.engine import Engine

    cfg = write(plugin_dir, f"""\
        state: "{state}"
        recovery: {{lease: {lease}}}
        tasks: {{hold: {{kind: {kind}, hold: {hold}}}}}
        """)
    engine = Engine(load_config(cfg))
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.setdefault(
        "record", engine.run_one(engine.resolve(["hold"])[0])))
    worker.start()
    return worker, box


def test_a_worker_that_cannot_renew_its_lease_stops_its_task(
        plugin_dir: Path, private_pg: Any) -> None:
    url, stop_server = private_pg.url, private_pg.stop
    worker, box = _hold(plugin_dir, url, "3s", "tick", 120)
    assert wait_for(lambda: len(ledger(plugin_dir)) == 1, 30)   # the task is holding
    t0 = time.monotonic()
    stop_server()                                  # the state store goes away under the run
    worker.join(30)
    assert not worker.is_alive(), "the task went on without a lease"
    # it stopped once its lease could no longer be renewed (3s), not after its 120s hold
    assert time.monotonic() - t0 < 10
    record = box["record"]
    assert record.status is RunStatus.FAILED
    assert record.message.startswith("lease lost: could not renew its lease before it "
                                     "expired"), record.message


def test_the_coordinator_outlives_an_outage_of_its_state_store(
        plugin_dir: Path, private_pg: Any) -> None:
    from tests.coordinator.helpers import Serve, store_of

    cfg = write(plugin_dir, f"""\
        state: "{private_pg.url}"
        tasks: {{t: {{kind: tick}}}}
        schedules: {{every-second: {{cron: "* * * * * *", tasks: [t]}}}}
        """)
    store = store_of(cfg)
    serve = Serve(cfg)
    serve.wait_leader(store)
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 2, 20), serve.text()
    private_pg.stop()
    time.sleep(4)
    assert serve.proc.poll() is None, serve.text()       # degraded, not crashed
    during = len(ledger(plugin_dir))
    private_pg.start()
    # generous: on a loaded machine the restarted server and the next leader tick take a while
    assert wait_for(lambda: len(ledger(plugin_dir)) >= during + 2, 90), serve.text()
    assert serve.stop() == 0, serve.text()
    assert "coordinator tick failed" in serve.text()
    runs = [r for r in store.list_runs(limit=1000) if r.task == "t"]
    assert len({r.scheduled_for for r in runs}) == len(runs)  # still no slot twice


def test_a_run_whose_target_lock_went_to_another_process_stops(
        plugin_dir: Path, postgres_db: str, monkeypatch: Any) -> None:
    """The store session holding the target lock ends (a store restart, a dropped connection)
    and another process takes the lock before it is taken again: the run must not go on beside
    that process."""
    import psycopg

    from wellkept.history import locks

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.5)
    worker, box = _hold(plugin_dir, postgres_db, "60s", "exclusive", 120)
    with psycopg.connect(postgres_db, autocommit=True) as rival:
        find = ("SELECT a.pid, (l.classid::int8 << 32) | l.objid::int8 FROM pg_stat_activity a "
                "JOIN pg_locks l ON l.pid = a.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name LIKE 'wellkept lock % hold'")  # the run's, of task hold
        assert wait_for(lambda: rival.execute(find).fetchone() is not None, 30)
        pid, key = rival.execute(find).fetchone()  # type: ignore[misc]
        t0 = time.monotonic()
        rival.execute("SELECT pg_terminate_backend(%s, 5000), pg_advisory_lock(%s)", (pid, key))
        worker.join(30)
        assert not worker.is_alive(), "the task went on without its lock"
        assert time.monotonic() - t0 < 15   # not after its 120 s hold
    record = box["record"]
    assert record.status is RunStatus.FAILED, record
    assert record.message.startswith("target lock lost: the store session holding it dropped"), \
        record.message
    assert "another run holds it now" in record.details["lock_lost"]


def test_a_run_takes_its_target_lock_again_after_a_store_restart(
        plugin_dir: Path, private_pg: Any, monkeypatch: Any) -> None:
    """The store restarts under a run: its lock went with its session, nobody took it
    meanwhile, so the run takes it again and completes."""
    import psycopg

    from wellkept.history import locks

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.5)
    worker, box = _hold(plugin_dir, private_pg.url, "120s", "exclusive", 8)
    find = ("SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND a.application_name LIKE 'wellkept lock % hold'")

    def held() -> bool:
        try:
            with psycopg.connect(private_pg.url, autocommit=True) as conn:
                return conn.execute(find).fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    assert wait_for(held, 30)
    private_pg.stop()
    time.sleep(1)
    private_pg.start()
    assert wait_for(held, 20), "the lock was not taken again"
    worker.join(60)
    record = box["record"]
    assert record.status is RunStatus.COMPLETED, record.message
    assert "lock_lost" not in record.details
