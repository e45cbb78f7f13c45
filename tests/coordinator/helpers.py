"""Helpers for the coordinator tests: build coordinators on an injected clock, read ledgers."""

from __future__ import annotations

import sqlite3
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from wellkept.clock import ManualClock
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.history import schedules

BASE = """\
plugins: [plugin_tasks]
coordinator: {heartbeat: 1s, leader_lease: 5s, reap_every: 1s}
recovery: {lease: 3s}
"""


def write(folder: Path, body: str, name: str = "wellkept.yml") -> Path:
    """The config ``body`` on top of BASE; a top-level key the body sets replaces BASE's (a key
    written twice is a config error)."""
    body = textwrap.dedent(body)
    own = {line.split(":", 1)[0] for line in body.splitlines() if line[:1].isalpha()}
    base = "".join(line for line in BASE.splitlines(keepends=True)
                   if line.split(":", 1)[0] not in own)
    path = folder / name
    path.write_text(base + body, encoding="utf-8")
    return path


def coordinator(config: Path, clock: ManualClock) -> Coordinator:
    return Coordinator(Engine(load_config(config)), clock=clock)


def ledger(folder: Path, name: str = "ledger.sqlite3") -> list[tuple[Any, ...]]:
    path = folder / name
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT item, run_id, attempt, trigger, pid, at FROM done "
                            "ORDER BY rowid").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the task made the file and is making its table
            return []
        raise
    finally:
        conn.close()


def slots(coord: Coordinator, schedule: str) -> list[tuple[str, str, str | None]]:
    """(slot time HH:MM, outcome, cause), oldest first."""
    rows = schedules.list_slots(coord.store, schedule=schedule, limit=1000)
    return [(r["slot_at"].strftime("%H:%M"), r["outcome"], r["cause"]) for r in reversed(rows)]


def tick_until_idle(coord: Coordinator, clock: ManualClock, moment: datetime) -> None:
    clock.set(moment)
    coord.tick()
    assert coord.pool.wait_idle(60), "the coordinator's jobs did not finish"


class Serve:
    """A real `wellkept serve` process; its log goes to a file beside the config."""

    def __init__(self, config: Path, name: str = "serve", *args: str) -> None:
        import os
        import subprocess

        from tests.helpers import wellkept_bin

        self.config = config
        self.log = config.parent / f"{name}.log"
        self.pidfile = config.parent / f"{name}.pid"
        env = {k: v for k, v in os.environ.items() if k != "WELLKEPT_CONFIG"}
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [wellkept_bin(), "-c", str(config), "serve", "--pidfile", str(self.pidfile),
             *args], stdout=self._out, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_leader(self, store: Any, seconds: float = 30) -> None:
        from tests.helpers import wait_for
        from wellkept.history import coordination

        def leading() -> bool:
            lease = coordination.get_lease(store)
            return lease is not None and lease.holder_pid == self.pid \
                and lease.lease_until > datetime.now(lease.lease_until.tzinfo)

        assert wait_for(leading, seconds), self.text()

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._out.close()

    def stop(self, timeout: float = 60) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def store_of(config: Path) -> Any:
    from wellkept.config import load_config
    from wellkept.history.store import HistoryStore

    return HistoryStore(load_config(config).state)
