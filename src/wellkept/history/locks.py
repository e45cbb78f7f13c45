"""Locks that hold across processes (and, on a PostgreSQL store, across machines).

With an SQLite store, a lock is an ``flock`` on a file beside the state database; with a
PostgreSQL store, a session-level advisory lock on a dedicated connection. Both vanish with
their holder, so a process killed with ``kill -9`` never leaves a target locked.

An advisory lock also vanishes with its *session*: a store restart, a failover or a dropped
connection releases it while the holder works on. So the holder's session is watched (every
``PROBE_SECONDS``); when it is gone, the lock is taken again at once, and when another process
got it first the holder is told (``on_lost``), so that two runs never go on together. The
session also sets short TCP keepalives, so that the server frees the lock of a holder whose
machine vanished within about half a minute, not the two hours of the kernel's default.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wellkept.errors import LockBusy

POLL_SECONDS = 0.1
#: how often the session holding an advisory lock is checked
PROBE_SECONDS = 2.0
#: how long leaving a lock waits for a probe in progress (it hangs 10 s at most: tcp_user_timeout)
STOP_WAIT = 15.0
#: the server drops a silent client's session (and its locks) after about 10 + 5 x 3 s; the
#: client gives up on an unanswered probe after 10 s, so it learns first
_SERVER_KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                      "tcp_keepalives_count": "3", "tcp_user_timeout": "25000"}
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                     "keepalives_count": 3, "tcp_user_timeout": 10000}

log = logging.getLogger("wellkept.locks")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


Cancelled = Callable[[], bool]
Lost = Callable[[str], None]


def _never() -> bool:
    return False


@contextlib.contextmanager
def file_lock(folder: Path, name: str, wait: float, holder: dict[str, Any],
              cancelled: Cancelled = _never) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:24]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or cancelled():
                    raise LockBusy(name, _describe(_read_holder(fd))) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"name": name, **holder}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another run"
    parts = [f"run {holder['run_id']}" if holder.get("run_id") else "another run"]
    if holder.get("task"):
        parts.append(f"({holder['task']})")
    if holder.get("pid"):
        parts.append(f"pid {holder['pid']} on {holder.get('host', '?')}")
    return " ".join(parts)


@contextlib.contextmanager
def advisory_lock(engine: sa.Engine, name: str, wait: float, holder: dict[str, Any],
                  cancelled: Cancelled = _never, on_lost: Lost | None = None) -> Iterator[None]:
    key = lock_key(name)
    # application_name (63 bytes at most) tells a waiting process who holds the lock
    label = (f"{str(holder.get('run_id', ''))[:8]} {holder.get('pid', '')} "
             f"{str(holder.get('host', ''))[:16]} {str(holder.get('task', ''))[:20]}")[:49]
    conn = _session(engine, label)
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(conn, key):
            if time.monotonic() >= deadline or cancelled():
                raise LockBusy(name, _pg_holder(conn, key))
            time.sleep(POLL_SECONDS)
        guard = _Guard(engine, conn, key, label, name, on_lost) if on_lost else None
    except LockBusy:
        _close(conn)
        raise
    except BaseException:  # the lock may have been granted: end the session, which frees it
        _drop(conn)
        raise
    try:
        yield
    finally:
        # None: the lock was lost, or the guard releases it once the call it is in returns
        held = guard.stop() if guard is not None else conn
        if held is not None:
            _release(held, key)


def _session(engine: sa.Engine, label: str) -> sa.Connection:
    """A dedicated autocommit connection, named after the holder, with short keepalives."""
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.execute(sa.text("SELECT set_config('application_name', :v, false)"),
                     {"v": "wellkept lock " + label})
        for setting, value in _SERVER_KEEPALIVES.items():
            conn.execute(sa.text("SELECT set_config(:s, :v, false)"), {"s": setting, "v": value})
    except BaseException:
        _close(conn)
        raise
    return conn


def _try_lock(conn: sa.Connection, key: int) -> bool:
    return bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())


def _probe(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


Backend = tuple[int, Any]  # a server process, told from a later one that reuses its pid


def _backend(conn: sa.Connection) -> Backend | None:
    with contextlib.suppress(Exception):
        row = conn.execute(sa.text("SELECT pid, backend_start FROM pg_stat_activity "
                                   "WHERE pid = pg_backend_pid()")).first()
        return (int(row[0]), row[1]) if row else None
    return None


def _release(conn: sa.Connection, key: int) -> None:
    """Unlock and give the session back; a session that could not unlock is closed for good
    (the server frees its locks), never pooled still holding the lock."""
    try:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    except Exception:
        _drop(conn)
    else:
        _close(conn)


def _drop(conn: sa.Connection) -> None:
    """Close the session itself, not just give it back to the pool."""
    with contextlib.suppress(Exception):
        conn.invalidate()
    _close(conn)


def _close(conn: sa.Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


class _Guard:
    """Watches the session that holds an advisory lock, in a thread, until ``stop``.

    A probe that fails means the session is gone, and the lock with it. The guard then opens a
    new session and takes the lock again; if another process holds it by then, it calls
    ``on_lost`` once and stops watching. The session that holds the lock belongs to the guard
    until ``stop`` returns it; if the guard's thread is still in a call then, the thread
    releases it when that call returns."""

    def __init__(self, engine: sa.Engine, conn: sa.Connection, key: int, label: str,
                 name: str, on_lost: Lost) -> None:
        self.engine, self.key, self.label = engine, key, label
        self.conn: sa.Connection | None = conn
        self.backend = _backend(conn)  # the server's process of the session holding the lock
        self.name, self.on_lost = name, on_lost
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._done = self._abandoned = False
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"wellkept-lock-{label[:8]}")
        self._thread.start()

    def stop(self) -> sa.Connection | None:
        """Stop watching; returns the session that holds the lock now, or None when the lock
        was lost or the thread is still in a call (it then releases the lock itself)."""
        self._stop.set()
        self._thread.join(PROBE_SECONDS + STOP_WAIT)
        with self._mutex:
            if self._done:
                return self.conn
            self._abandoned = True
            return None

    def _watch(self) -> None:
        try:
            while self.conn is not None and not self._stop.wait(PROBE_SECONDS):
                try:
                    _probe(self.conn)
                except Exception as exc:
                    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                    self._retake(_first_line(orig))
        finally:
            with self._mutex:
                self._done = True
                left, self.conn = (self.conn, None) if self._abandoned else (None, self.conn)
            if left is not None:
                _release(left, self.key)

    def _retake(self, dropped: str) -> None:
        """Take the lock again on a new session, trying until the store answers. While it
        does not, no other process can take the lock either; the run's lease decides how long
        the run may go on without its store."""
        assert self.conn is not None
        _drop(self.conn)
        self.conn, old = None, self.backend
        log.warning("lock %s: its store session dropped (%s); taking it again", self.name,
                    dropped)
        while not self._stop.is_set():
            conn = None
            try:
                conn = _session(self.engine, self.label)
                if _try_lock(conn, self.key):
                    log.warning("lock %s: taken again", self.name)
                    self.conn, self.backend = conn, _backend(conn)
                    return
                backend = _holder_backend(conn, self.key)
                if backend is None or backend == old:
                    # let go meanwhile, or still held by the dropped session, which the server
                    # has not seen end (a network cut): no other process has it; end that
                    # session rather than wait for the server's keepalives
                    if backend is not None:
                        conn.execute(sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid = :p AND backend_start = :s"),
                            {"p": backend[0], "s": backend[1]})
                    _close(conn)
                    self._stop.wait(POLL_SECONDS)
                    continue
                holder = _pg_holder(conn, self.key)
            except Exception:
                if conn is not None:
                    _drop(conn)
                self._stop.wait(PROBE_SECONDS)
                continue
            _close(conn)
            if self._stop.is_set():  # the run is over: nothing to stop
                return
            reason = f"the store session holding it dropped ({dropped}), and {holder} holds it now"
            log.error("lock %s lost: %s", self.name, reason)
            self.on_lost(reason)
            return


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip() if error is not None else ""
    return text.splitlines()[0] if text else type(error).__name__


def _holder_row(conn: sa.Connection, key: int) -> Any:
    """The session holding the advisory lock ``key``: pid, backend_start, application_name."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return conn.execute(sa.text(
        "SELECT a.pid, a.backend_start, a.application_name FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1"),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).first()


def _holder_backend(conn: sa.Connection, key: int) -> Backend | None:
    row = _holder_row(conn, key)
    return (int(row[0]), row[1]) if row else None


def _pg_holder(conn: sa.Connection, key: int) -> str:
    row = _holder_row(conn, key)
    row = (row[2],) if row else None
    if not row or not str(row[0]).startswith("wellkept lock "):
        return "another run"
    run_id, pid, host, task = (str(row[0])[len("wellkept lock "):].split(" ", 3) + [""] * 4)[:4]
    if not run_id:
        return "another run"
    return f"run {run_id}…" + (f" ({task})" if task else "") + f" pid {pid}" + \
        (f" on {host}" if host else "")
