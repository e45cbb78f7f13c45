"""The history store on both backends: SQLite (embedded default) and the real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import wait_for
from wellkept.errors import LockBusy
from wellkept.history import locks
from wellkept.history.schema import HEAD_REVISION
from wellkept.history.store import HistoryStore
from wellkept.records import RunRecord
from wellkept.types import RunStatus, Trigger


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/state.db"
    return request.getfixturevalue("postgres_db")


@pytest.fixture
def store(store_url: str):  # type: ignore[no-untyped-def]
    s = HistoryStore(store_url)
    yield s
    s.close()


def record(task: str = "purge", status: RunStatus = RunStatus.RUNNING,
           started: datetime | None = None, **kw: object) -> RunRecord:
    return RunRecord(run_id=str(uuid.uuid4()), task=task, kind="cleanup", target="app",
                     status=status, dry_run=False, trigger=Trigger.MANUAL,
                     started_at=started or datetime.now(UTC), **kw)  # type: ignore[arg-type]


def test_migrations_apply_on_first_use(store: HistoryStore) -> None:
    store.list_runs()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
            == HEAD_REVISION
        names = set(sa.inspect(conn).get_table_names())
    assert {"wk_runs", "wk_checkpoints", "wk_schedule_state"} <= names


def test_run_round_trip_keeps_every_field(store: HistoryStore) -> None:
    r = record(host="db1", pid=4242, schedule="daily")
    store.start_run(r, {"table": "events"})
    assert store.get_run(r.run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
    done = RunRecord(**{**r.__dict__, "status": RunStatus.PARTIAL_FAILURE,
                        "finished_at": r.started_at + timedelta(seconds=2.5),
                        "duration_seconds": 2.5, "message": "deleted 3 rows, then failed",
                        "metrics": {"rows_deleted": 3, "bytes_freed": 1.5},
                        "details": {"nested": {"a": [1, 2]}, "text": "é ✓"},
                        "errors": ["boom"]})
    store.finish_run(done)
    got = store.get_run(r.run_id)
    assert got is not None
    assert got.to_json() == done.to_json()
    assert (got.host, got.pid, got.schedule, got.attempt) == ("db1", 4242, "daily", 1)
    assert got.started_at.tzinfo is not None
    assert got.started_at == r.started_at.replace(microsecond=got.started_at.microsecond)


def test_list_filters_and_orders_newest_first(store: HistoryStore) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i, (task, status) in enumerate([("a", RunStatus.COMPLETED), ("b", RunStatus.FAILED),
                                        ("a", RunStatus.FAILED), ("a", RunStatus.SKIPPED)]):
        store.start_run(record(task, status, base + timedelta(minutes=i)), {})
    assert [r.started_at.minute for r in store.list_runs(limit=10)] == [3, 2, 1, 0]
    assert [r.task for r in store.list_runs(limit=2)] == ["a", "a"]
    assert {r.task for r in store.list_runs(task="a")} == {"a"}
    assert len(store.list_runs(task="a")) == 3
    failed = store.list_runs(status="failed")
    assert sorted(r.task for r in failed) == ["a", "b"]
    assert store.list_runs(task="a", status="failed", limit=5)[0].started_at.minute == 2


def test_checkpoints_are_fenced_by_attempt(store: HistoryStore) -> None:
    r = record()
    store.start_run(r, {})
    assert store.add_checkpoint(r.run_id, 1, "batch", 40.0, {"last_id": 123})
    assert store.latest_checkpoint(r.run_id)["data"] == {"last_id": 123}  # type: ignore[index]
    assert not store.add_checkpoint(r.run_id, 2, "batch", 50.0, {"last_id": 999})
    assert store.latest_checkpoint(r.run_id)["data"] == {"last_id": 123}  # type: ignore[index]
    assert store.set_progress(r.run_id, 1, 55.0, "deleting", "550 of 1000")
    assert not store.set_progress(r.run_id, 7, 99.0, "stale", "")


def _hold_lock(url: str, name: str, seconds: float, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    s = HistoryStore(url)
    with s.lock(name, 5, {"run_id": "feedbeef-0000", "task": "holder", "pid": 1, "host": "h"}):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_locks_hold_across_processes(store: HistoryStore, store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(store_url, "target:x", 2.0, ready))
    proc.start()
    assert ready.wait(30)
    t0 = time.monotonic()
    with pytest.raises(LockBusy) as exc, store.lock("target:x", 0.5, {}):
        pass
    assert 0.4 < time.monotonic() - t0 < 3
    assert "feedbeef" in str(exc.value)
    with store.lock("target:other", 0.5, {}):  # other names are independent
        pass
    proc.join(30)
    with store.lock("target:x", 5, {}):  # free again once the holder ended
        pass


def test_lock_is_released_when_the_holder_is_killed(store: HistoryStore, store_url: str) -> None:
    code = ("import sys, time; from wellkept.history.store import HistoryStore;"
            "s = HistoryStore(sys.argv[1]);"
            "cm = s.lock('target:k', 5, {'run_id': 'x'}); cm.__enter__();"
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, store_url], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy), store.lock("target:k", 0.3, {}):
        pass
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait()
    with store.lock("target:k", 10, {}):
        pass


def test_concurrent_first_use_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh/state.db"
    code = ("import sys; from wellkept.history.store import HistoryStore;"
            "HistoryStore(sys.argv[1]).list_runs(); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert HistoryStore(url).list_runs() == []


def test_unreachable_postgres_state_store_is_a_clean_error() -> None:
    from tests.helpers import free_port
    from wellkept.errors import StoreError

    s = HistoryStore(f"postgresql://wellkept:pw-secret@127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreError) as exc:
        s.list_runs()
    assert "pw-secret" not in str(exc.value) and "cannot open the state store" in str(exc.value)


def test_a_migration_stopped_midway_leaves_nothing_behind(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed while it migrates a new SQLite store (its first use) must not leave
    tables without their alembic_version, or every later open fails on 'already exists'."""
    from alembic.operations import Operations

    url = f"sqlite:///{tmp_path / 'state.db'}"
    real = Operations.create_index
    calls = []

    def dies_on_the_second_index(self: Any, *args: Any, **kw: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:  # a table and an index are made already
            raise KeyboardInterrupt("killed")
        return real(self, *args, **kw)

    monkeypatch.setattr(Operations, "create_index", dies_on_the_second_index)
    first = HistoryStore(url)
    with pytest.raises(KeyboardInterrupt):
        first.list_runs(limit=1)
    first.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    monkeypatch.setattr(Operations, "create_index", real)
    again = HistoryStore(url)
    assert again.list_runs(limit=1) == []
    again.close()


# --- a PostgreSQL store's advisory lock outlives its session, or tells the holder -----------------


def _lock_session(url: str, run_id: str) -> int | None:
    """The backend pid of the session holding the lock of run ``run_id``, if any."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE %s",
            (f"wellkept lock {run_id}%",)).fetchone()
    return int(row[0]) if row else None


def test_a_lock_whose_session_dropped_is_taken_again(postgres_db: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.2)
    store, other = HistoryStore(postgres_db), HistoryStore(postgres_db)
    lost: list[str] = []
    with store.lock("target:g", 1, {"run_id": "abcd1234"}, on_lost=lost.append):
        first = _lock_session(postgres_db, "abcd1234")
        assert first is not None
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
        assert wait_for(lambda: _lock_session(postgres_db, "abcd1234") not in (None, first), 10)
        with pytest.raises(LockBusy), other.lock("target:g", 0.3, {}):
            pass
    assert lost == []
    with other.lock("target:g", 1, {}):  # released at the end as usual
        pass
    store.close()
    other.close()


def test_a_lock_taken_by_another_while_its_session_was_gone_is_reported_lost(
        postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.5)
    store = HistoryStore(postgres_db)
    lost: list[str] = []
    with psycopg.connect(postgres_db, autocommit=True) as rival:
        with store.lock("target:g", 1, {"run_id": "abcd1234"}, on_lost=lost.append):
            pid = _lock_session(postgres_db, "abcd1234")
            # the holder's session ends and, in the same statement, another session takes it
            rival.execute("SELECT pg_terminate_backend(%s, 5000), pg_advisory_lock(%s)",
                          (pid, locks.lock_key("target:g")))
            assert wait_for(lambda: bool(lost), 10)
        assert len(lost) == 1
        assert lost[0].startswith("the store session holding it dropped (")
        assert lost[0].endswith("and another run holds it now"), lost[0]
        # leaving the block released nothing of the rival's
        held = rival.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                             "pid = pg_backend_pid() AND granted").fetchone()
        assert held == (1,)
    store.close()


def _dropped() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_a_lock_taken_again_as_its_run_ended_is_released(
        postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run ends while the guard, after its session dropped, is still taking the lock again
    on a store slow to answer: when it gets it, it must let it go, not keep it for good."""
    import psycopg

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(locks, "STOP_WAIT", 0.2)
    real, slow = locks._session, threading.Event()

    def session(engine: sa.Engine, label: str) -> sa.Connection:
        if slow.is_set():
            time.sleep(1.5)
        return real(engine, label)

    monkeypatch.setattr(locks, "_session", session)
    store, other = HistoryStore(postgres_db), HistoryStore(postgres_db)
    lost: list[str] = []
    with store.lock("target:g", 1, {"run_id": "abcd1234"}, on_lost=lost.append):
        first = _lock_session(postgres_db, "abcd1234")
        slow.set()
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
        time.sleep(0.6)  # the guard noticed, and waits for a new session
    time.sleep(2.5)  # it got one, and the lock, after the run had left
    assert _lock_session(postgres_db, "abcd1234") is None
    with other.lock("target:g", 1, {}):
        pass
    assert lost == []
    store.close()
    other.close()


def test_a_lock_still_held_by_its_own_dropped_session_is_not_lost(
        postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client gave up on its session (a network cut) before the server did: the old
    session, still alive on the server, holds the lock. That is no other process: the run
    goes on, and the lock is taken again once the old session is gone."""
    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.2)
    real_probe, real_close = locks._probe, locks._close
    state = {"probe": 0}
    kept: list[sa.Connection] = []

    def probe(conn: sa.Connection) -> None:
        state["probe"] += 1
        if state["probe"] == 2:
            raise _dropped()
        real_probe(conn)

    def close(conn: sa.Connection) -> None:
        if not kept and threading.current_thread().name.startswith("wellkept-lock"):
            # the dropped session: the server does not know yet
            kept.append(conn)
            return
        real_close(conn)

    monkeypatch.setattr(locks, "_probe", probe)
    monkeypatch.setattr(locks, "_close", close)
    monkeypatch.setattr(locks, "_drop", close, raising=False)
    store = HistoryStore(postgres_db)
    lost: list[str] = []
    with store.lock("target:g", 1, {"run_id": "abcd1234"}, on_lost=lost.append):
        first = _lock_session(postgres_db, "abcd1234")
        assert wait_for(lambda: bool(kept), 10)
        assert wait_for(lambda: _lock_session(postgres_db, "abcd1234") not in (None, first), 10)
        assert lost == []
    assert _lock_session(postgres_db, "abcd1234") is None
    real_close(kept[0])
    store.close()


def test_a_store_error_of_any_kind_while_taking_a_lock_again_is_retried(
        postgres_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new session may fail with more than a DBAPI error (the pool's timeout when every
    connection is in use): the guard tries again, it does not die and leave the run unlocked."""
    import psycopg

    monkeypatch.setattr(locks, "PROBE_SECONDS", 0.2)
    real, failing = locks._session, threading.Event()

    def session(engine: sa.Engine, label: str) -> sa.Connection:
        if failing.is_set():
            failing.clear()
            raise sa.exc.TimeoutError("QueuePool limit of size 2 overflow 10 reached")
        return real(engine, label)

    monkeypatch.setattr(locks, "_session", session)
    store = HistoryStore(postgres_db)
    lost: list[str] = []
    with store.lock("target:g", 1, {"run_id": "abcd1234"}, on_lost=lost.append):
        first = _lock_session(postgres_db, "abcd1234")
        failing.set()
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,))
        assert wait_for(lambda: _lock_session(postgres_db, "abcd1234") not in (None, first), 10)
    assert lost == []
    store.close()


def test_many_locks_at_once_leave_the_store_its_connections(postgres_db: str) -> None:
    """Each running mutating task holds its lock's session for the whole run: twenty of them
    (more than the store's pool holds) must not starve each other or the store's queries."""
    import contextlib

    store = HistoryStore(postgres_db)
    t0 = time.monotonic()
    with contextlib.ExitStack() as held:
        for i in range(20):
            held.enter_context(store.lock(f"target:many-{i}", 1, {"run_id": f"r{i:07d}"},
                                          on_lost=lambda _reason: None))
        assert store.list_runs(limit=1) == []
    assert time.monotonic() - t0 < 20
    with store.lock("target:many-0", 1, {}):  # all released
        pass
    store.close()
