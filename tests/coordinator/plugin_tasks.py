"""User tasks written with the Python API (``@wellkept.task``), as a user would.

The tests copy this file beside their config and load it with ``plugins: [plugin_tasks]``, so
the real ``wellkept`` command (a subprocess) registers them exactly like a user's module.
Each task writes what it does to a ledger (an SQLite file), so a test can tell what work was
done, by which run and attempt, and whether any was done twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import wellkept
from wellkept.errors import Retry


def _ledger(ctx: Any, path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(ctx.resolve_path(path), timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS done (item INTEGER, run_id TEXT, attempt INTEGER, "
                 "trigger TEXT, scheduled_for TEXT, pid INTEGER, at REAL)")
    return conn


@wellkept.task(name="steps", recoverable=True, priority=2)
def steps(ctx: Any, items: int = 100, every: int = 10, pause: float = 0.05,
          ledger: str = "ledger.sqlite3", die_at: int = -1, die_flag: str = "") -> dict[str, Any]:
    """Work through numbered items, checkpointing every `every` items.

    Each item is written to the ledger before the next starts. With `die_at` and an existing
    `die_flag` file, the process kills itself (SIGKILL) at that item, as a crash would."""
    start = int(ctx.resumed_from["data"]["next"]) if ctx.resumed_from else 0
    conn = _ledger(ctx, ledger)
    flag = Path(ctx.resolve_path(die_flag)) if die_flag else None
    for i in range(start, items):
        conn.execute("INSERT INTO done VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (i, ctx.run_id, ctx.attempt, str(ctx.trigger), None, os.getpid(),
                      time.time()))
        if i == die_at and flag is not None and flag.exists():
            os.kill(os.getpid(), signal.SIGKILL)
        if (i + 1) % every == 0 or i + 1 == items:
            ctx.checkpoint("items", 100.0 * (i + 1) / items, {"next": i + 1})
        else:
            ctx.progress(100.0 * (i + 1) / items, "items", f"{i + 1} of {items}")
        time.sleep(pause)
    return {"items": items - start, "started_at_item": start}


@steps.validator
def steps_done(ctx: Any, items: int, every: int, pause: float, ledger: str, die_at: int,
               die_flag: str) -> bool:
    """Every item is in the ledger."""
    conn = _ledger(ctx, ledger)
    return conn.execute("SELECT count(DISTINCT item) FROM done").fetchone()[0] >= items


@wellkept.task(name="tick")
def tick(ctx: Any, ledger: str = "ledger.sqlite3", hold: float = 0.0) -> str:
    """Note that it ran (one ledger row per run), optionally holding for `hold` seconds."""
    conn = _ledger(ctx, ledger)
    conn.execute("INSERT INTO done VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (0, ctx.run_id, ctx.attempt, str(ctx.trigger), None, os.getpid(),
                  time.time()))
    if hold:
        ctx.sleep(hold)
    return "ticked"


@wellkept.task(name="flaky")
async def flaky(ctx: Any, fail_times: int = 2, ledger: str = "ledger.sqlite3") -> str:
    """Fails with a transient error `fail_times` times, then succeeds (an async task)."""
    conn = _ledger(ctx, ledger)
    conn.execute("INSERT INTO done VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (0, ctx.run_id, ctx.attempt, str(ctx.trigger), None, os.getpid(),
                  time.time()))
    tries = conn.execute("SELECT count(*) FROM done WHERE run_id = ?",
                         (ctx.run_id,)).fetchone()[0]
    if tries <= fail_times:
        raise Retry(f"not yet (try {tries})")
    return f"succeeded on try {tries}"


@wellkept.task(name="exclusive", mutating=True)
def exclusive(ctx: Any, ledger: str = "spans.sqlite3", hold: float = 1.0) -> str:
    """Change the target for `hold` seconds (mutating: under the target lock), noting when it
    started and ended, so a test can tell whether two runs ever overlapped."""
    conn = sqlite3.connect(ctx.resolve_path(ledger), timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS spans (run_id TEXT, pid INTEGER, started REAL, "
                 "ended REAL)")
    started = time.time()
    ctx.sleep(hold)
    conn.execute("INSERT INTO spans VALUES (?, ?, ?, ?)",
                 (ctx.run_id, os.getpid(), started, time.time()))
    return "held"
