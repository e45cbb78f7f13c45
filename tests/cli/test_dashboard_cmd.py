"""`wellkept dashboard`: the overview in the terminal, once and live (under a real pty)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import run_cli, wellkept_bin

CONFIG = """\
targets:
  app: {url: "sqlite:///app.sqlite3"}
tasks:
  purge: {kind: cleanup, target: app, table: events, date_column: created_at, retention: 30d}
  broken: {kind: cleanup, target: app, table: missing, date_column: created_at, retention: 1d}
  health-check: {kind: health}
schedules:
  nightly: {cron: "0 2 * * *", tasks: [purge]}
"""


def test_dashboard_once_shows_health_failures_schedules_results_and_trends(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    cfg = str(write_config(CONFIG))
    for task in ("health-check", "purge", "broken"):
        run_cli("-c", cfg, "run", task)
    assert run_cli("-c", cfg, "schedule", "pause", "nightly").returncode == 0
    proc = run_cli("-c", cfg, "dashboard", "--once")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for piece in ("wellkept", "health: ", "failures (24h)", "broken", "targets and host",
                  "cpu ", "schedules", "nightly", "0 2 * * *", "recent results", "purge",
                  "completed", "trends", "rows deleted per day", "3000 in all",
                  "SQLite 3."):  # a target's version, as on the web page
        assert piece in out, piece
    assert out.index("failures (24h)") < out.index("recent results")   # failures first
    nightly = next(line for line in out.splitlines() if "nightly" in line)
    assert nightly.count("paused") == 2   # its state, and no next fire while paused
    # the live view crops what does not fit the terminal: the open-ended list of results goes
    # last, so a short terminal loses old results rather than the schedules and the trends
    assert out.index("schedules") < out.index("trends") < out.index("recent results")


def test_dashboard_refreshes_live_and_quits_on_ctrl_c(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    cfg = str(write_config(CONFIG))
    run_cli("-c", cfg, "run", "health-check")
    main, child = pty.openpty()
    env = {**{k: v for k, v in os.environ.items() if k != "WELLKEPT_CONFIG"},
           "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    proc = subprocess.Popen([wellkept_bin(), "-c", cfg, "dashboard", "--refresh", "0.5"],
                            stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)

    def read_until(marker: bytes, seen: bytes = b"") -> bytes:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and marker not in seen:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                seen += os.read(main, 65536)
        assert marker in seen, seen[-2000:]
        return seen

    try:
        first = read_until(b"health-check")
        assert b"purge" not in first
        run_cli("-c", cfg, "run", "purge")             # appears at a later refresh
        read_until(b"purge")
        proc.send_signal(signal.SIGINT)
        # keep reading: the last frame it writes on the way out would block on a full terminal
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    os.read(main, 65536)
                except OSError:                     # EIO once the child side has closed
                    break
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


def test_the_terminal_trends_have_bytes_freed_per_day_as_the_web_page_does() -> None:
    from rich.console import Console

    from wellkept.cli.dashboard_cmd import _trends
    from wellkept.reports.model import Charts

    charts = Charts(freed_per_day=[
        {"day": "2026-11-21", "rows_deleted": 10.0, "bytes_freed": 0.0},
        {"day": "2026-11-22", "rows_deleted": 0.0, "bytes_freed": 3 * 1024 * 1024.0}])
    console = Console(width=120, record=True)
    console.print(_trends(charts))
    text = console.export_text()
    assert "rows deleted per day" in text and "10 in all" in text
    assert "bytes freed per day" in text and "3.0 MiB in all" in text
