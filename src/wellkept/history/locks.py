"""Locks that hold across processes (and, on a PostgreSQL store, across machines).

With an SQLite store, a lock is an ``flock`` on a file beside the state database; with a
PostgreSQL store, a session-level advisory lock on a dedicated connection. Both vanish with
their holder, so a process killed with ``kill -9`` never leaves a target locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wellkept.errors import LockBusy

POLL_SECONDS = 0.1


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


Cancelled = Callable[[], bool]


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
                  cancelled: Cancelled = _never) -> Iterator[None]:
    key = lock_key(name)
    # application_name (63 bytes at most) tells a waiting process who holds the lock
    label = (f"{str(holder.get('run_id', ''))[:8]} {holder.get('pid', '')} "
             f"{str(holder.get('host', ''))[:16]} {str(holder.get('task', ''))[:20]}")[:49]
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text("SELECT set_config('application_name', :v, false)"),
                     {"v": "wellkept lock " + label})
        deadline = time.monotonic() + wait
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            if time.monotonic() >= deadline or cancelled():
                raise LockBusy(name, _pg_holder(conn, key))
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def _pg_holder(conn: sa.Connection, key: int) -> str:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(sa.text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
        "AND l.objsubid = 1"), {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).first()
    if not row or not str(row[0]).startswith("wellkept lock "):
        return "another run"
    run_id, pid, host, task = (str(row[0])[len("wellkept lock "):].split(" ", 3) + [""] * 4)[:4]
    if not run_id:
        return "another run"
    return f"run {run_id}…" + (f" ({task})" if task else "") + f" pid {pid}" + \
        (f" on {host}" if host else "")
