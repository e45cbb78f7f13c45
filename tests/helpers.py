"""Helpers for tests: data builders and a way to drive the installed `wellkept` command."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback port with nothing listening on it (for 'connection refused' tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def make_app_db(path: Path, *, old: int = 3000, fresh: int = 1000,
                padding: int = 200) -> Path:
    """An SQLite file with an `events` table: `old` rows 100 days old, `fresh` rows 1 day old."""
    now = datetime.now(UTC)
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, body TEXT,
                             created_at DATETIME NOT NULL);
        CREATE INDEX events_created_at ON events (created_at);
    """)
    with conn:
        conn.executemany("INSERT INTO events (kind, body, created_at) VALUES (?, ?, ?)",
                         [("old", "x" * padding, ts(now - timedelta(days=100, seconds=i)))
                          for i in range(old)]
                         + [("fresh", "y" * padding, ts(now - timedelta(days=1, seconds=i)))
                            for i in range(fresh)])
    conn.close()
    return path


def wellkept_bin() -> str:
    """The installed console script (tests drive it exactly as a user would)."""
    found = shutil.which("wellkept", path=str(Path(sys.executable).parent))
    assert found, "the wellkept command is not installed in this environment (pip install -e .)"
    return found


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "WELLKEPT_CONFIG"}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([wellkept_bin(), *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def sql(path: Path, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement on an SQLite file and return all rows (checks the file itself)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(statement, args).fetchall()
    finally:
        conn.close()


def wait_for(check: Callable[[], bool], seconds: float = 10) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


class PrivatePostgres:
    """A throwaway PostgreSQL server of the tests alone: a cluster made with initdb, started
    on a free loopback port (as a standby with no primary when ``standby``), stopped with
    ``stop()``. For faults that must not touch the shared server: a standby, a server that
    goes away."""

    def __init__(self, purpose: str, *, standby: bool = False) -> None:
        import glob
        import tempfile

        import pytest

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins or shutil.which("su") is None:
            pytest.fail(f"initdb is not installed (Debian package postgresql); it is needed to "
                        f"start {purpose}", pytrace=False)
        self.bindir = Path(bins[-1]).parent
        # not under pytest's tmp folder: that one is readable by root only, and postgres runs it
        self.folder = Path(tempfile.mkdtemp(prefix="wellkept-pg-"))
        shutil.chown(self.folder, "postgres")
        port = free_port()
        self._as_postgres(f"{self.bindir}/initdb -D {self.folder}/data -A trust -U postgres")
        if standby:
            self._as_postgres(f"touch {self.folder}/data/standby.signal")
        self.port = port
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True,
                       timeout=60)

    def start(self) -> None:
        self._as_postgres(f"{self.bindir}/pg_ctl -D {self.folder}/data -l {self.folder}/log -w "
                          f"-o '-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1' "
                          "start")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._as_postgres(f"{self.bindir}/pg_ctl -D {self.folder}/data -m immediate stop")
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
