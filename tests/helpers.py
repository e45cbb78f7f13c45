"""Helpers for tests: data builders and a way to drive the installed `wellkept` command."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def private_redis(folder: Path, password: str = "",
                  extra: tuple[str, ...] = ()) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port (nothing saved to disk);
    yields its URL (db 0) and stops it afterwards."""
    from urllib.parse import quote

    import redis

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    auth = ("--requirepass", password) if password else ()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder), *auth, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, password=password or None)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        userinfo = f":{quote(password, safe='')}@" if password else ""
        yield f"redis://{userinfo}127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for(check: Callable[[], bool], seconds: float = 10) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def scratch_databases(url: str) -> set[str]:
    """The restore tests' scratch databases on the server (other runs may have their own)."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'wk\\_verify\\_%'")}


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted on ``folder`` (created) for the block: a full disk (``size=256k``),
    no inodes left (``nr_inodes=3``) or a read-only one (``ro``). Needs root, as CI has."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"this test needs root to mount a tmpfs: {mounted.stderr}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
