"""Two ways to drive a management command, as a test does: ``call_command`` in this process,
and a ``manage.py`` subprocess of the same project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

MANAGE = Path(__file__).resolve().parent / "manage.py"


def call(*args: str, database: str | None = None) -> dict[str, Any]:
    """``manage.py maintenance ARGS --output json`` through call_command: its JSON (a
    CommandError, for a failure, propagates)."""
    from django.core.management import call_command

    out = StringIO()
    extra = ["--database", database] if database else []
    call_command("maintenance", *args, *extra, "--output", "json", stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def call_failing(*args: str, database: str | None = None) -> tuple[dict[str, Any], Any]:
    """Like ``call``, for a run expected to fail: its JSON and the CommandError."""
    from django.core.management import CommandError, call_command

    out = StringIO()
    extra = ["--database", database] if database else []
    try:
        call_command("maintenance", *args, *extra, "--output", "json", stdout=out)
    except CommandError as exc:
        return json.loads(out.getvalue()), exc
    raise AssertionError("the command did not fail")


def manage(*args: str, sessions_db: str = "default", timeout: float = 120,
           extra_env: dict[str, str] | None = None,
           **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` of the test project, in a subprocess (same databases, unless
    ``extra_env`` names other settings or another folder)."""
    env = {**os.environ, "WELLKEPT_DJANGO_SESSIONS_DB": sessions_db, **(extra_env or {})}
    return subprocess.run([sys.executable, str(MANAGE), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False, **kwargs)


def start_coordinator(pidfile: Path) -> subprocess.Popen[str]:
    """``manage.py start_maintenance_coordinator --pidfile PIDFILE`` in the foreground, as a
    running process; the caller stops it."""
    return subprocess.Popen([sys.executable, str(MANAGE), "start_maintenance_coordinator",
                             "--pidfile", str(pidfile)], stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


def wrote_its_pid(pidfile: Path, proc: subprocess.Popen[str]) -> bool:
    """The coordinator has written its PID: it runs."""
    return pidfile.exists() and pidfile.read_text().strip() == str(proc.pid)


def manage_json(*args: str, sessions_db: str = "default") -> tuple[int, dict[str, Any]]:
    done = manage(*args, "--output", "json", sessions_db=sessions_db)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def records(report: dict[str, Any], operation: str) -> list[dict[str, Any]]:
    """The RUN records of one operation of a report."""
    return list(report[operation]["details"].values())
