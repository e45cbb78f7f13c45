"""``manage.py maintenance_status`` and ``start_maintenance_coordinator`` (seed 001): the same
status report and coordinator as ``wellkept status`` and ``wellkept serve``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command

from tests.django_app import data
from tests.django_app.drive import manage
from tests.helpers import wait_for

SEED_001_SCHEDULES = {"daily_maintenance", "weekly_optimization", "monthly_deep_maintenance",
                      "backup_testing", "disaster_recovery_test", "hourly_health_check",
                      "daily_maintenance_report", "weekly_maintenance_report"}


def _status(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("maintenance_status", *args, "--format", "json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_status_lists_the_last_results_and_seed_001s_schedules(
        django_project: dict[str, str]) -> None:
    data.seed("default")
    call_command("maintenance", "--operation", "sessions", stdout=StringIO())
    report = _status("--schedules")
    assert report["coordinator"]["running"] is False
    last = {r["task"]: r for r in report["last_results"]}
    assert last["sessions"]["status"] == "completed" and last["sessions"]["target"] == "default"
    schedules = {s["id"]: s for s in report["schedules"]}
    assert set(schedules) == SEED_001_SCHEDULES
    daily = schedules["daily_maintenance"]
    assert daily["cron"] == "0 2 * * *" and daily["enabled"] is True
    # the rules and the backup task cover default and lite: here, on default only
    assert daily["tasks"] == ["sessions", "admin_logentry@default", "audit_log@default",
                              "failed_tasks@default", "vacuum", "stats"]
    assert schedules["weekly_optimization"]["tasks"] == ["reindex", "views", "bloat",
                                                         "app-backup@default"]
    # seed 001's backup and DR drills wait for ENABLE_BACKUP_TESTING / ENABLE_DISASTER_RECOVERY
    assert schedules["backup_testing"]["enabled"] is False
    # and the reports wait for SEND_MAINTENANCE_REPORTS / SEND_WEEKLY_MAINTENANCE_REPORTS
    assert schedules["daily_maintenance_report"]["enabled"] is False
    assert schedules["daily_maintenance_report"]["tasks"] == ["daily_report"]
    assert schedules["hourly_health_check"]["tasks"] == ["health"]
    assert "schedules" not in _status()
    text = StringIO()
    call_command("maintenance_status", "--schedules", stdout=text)
    assert "coordinator: not running" in text.getvalue()
    assert "daily_maintenance" in text.getvalue() and "hourly_health_check" in text.getvalue()


def test_the_daemon_detaches_holds_its_pidfile_runs_requests_and_stops(
        django_project: dict[str, str], tmp_path: Path) -> None:
    from wellkept.contrib.django.conf import load
    from wellkept.history import coordination
    from wellkept.history.store import HistoryStore
    from wellkept.records import utcnow

    data.seed("default")
    pidfile, logfile = tmp_path / "run" / "coordinator.pid", tmp_path / "coordinator.log"
    started = time.monotonic()
    done = manage("start_maintenance_coordinator", "--daemon", "--pidfile", str(pidfile),
                  "--logfile", str(logfile))
    assert done.returncode == 0, done.stderr
    pid = int(pidfile.read_text())
    assert f"pid {pid}" in done.stdout
    try:
        assert time.monotonic() - started < 30
        os.kill(pid, 0)  # alive after the command returned: detached
        assert os.getsid(pid) != os.getsid(0)  # in a session of its own, no terminal
        assert Path(f"/proc/{pid}/cwd").resolve() == Path("/")
        again = manage("start_maintenance_coordinator", "--daemon", "--pidfile", str(pidfile))
        assert again.returncode == 1 and f"names process {pid}" in again.stderr, again.stderr
        assert _wait(lambda: (_status()["coordinator"]["leader"] or {}).get("pid") == pid)
        shown = manage("maintenance_status", "--schedules", "--format", "json")
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["coordinator"]["running"] and status["coordinator"]["leader"]["pid"] == pid
        assert {s["id"] for s in status["schedules"]} == SEED_001_SCHEDULES
        store = HistoryStore(load().settings.state)
        try:  # what `wellkept schedule trigger` sends a running coordinator
            request = coordination.add_request(store, "task", "sessions", "manual", utcnow(),
                                               "test")
            assert _wait(lambda: (coordination.get_request(store, request) or {})
                         .get("finished_at") is not None, 30)
        finally:
            store.close()
        assert data.counts("default")["sessions_expired"] == 0
    finally:
        os.kill(pid, signal.SIGTERM)
    assert _wait(lambda: not _alive(pid), 30)
    assert not pidfile.exists()
    log = logfile.read_text()
    assert "started" in log and "stopped" in log, log


def test_the_coordinator_in_the_foreground_stops_on_sigterm(django_project: dict[str, str],
                                                            tmp_path: Path) -> None:
    from tests.django_app.drive import start_coordinator, wrote_its_pid

    pidfile = tmp_path / "fg.pid"
    proc = start_coordinator(pidfile)
    try:
        assert _wait(lambda: wrote_its_pid(pidfile, proc))
        assert _wait(lambda: _status()["coordinator"]["running"])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "shutting down: SIGTERM" in err and not pidfile.exists()


def test_runs_in_the_coordinator_close_stale_django_connections(
        django_project: dict[str, str]) -> None:
    """Django's request hygiene in a worker thread: a connection past CONN_MAX_AGE (0 here)
    is closed before and after each run."""
    from django.db import connections

    from wellkept.contrib.django.connections import DjangoConnections
    from wellkept.records import TaskResult

    seen: dict[str, Any] = {}

    def run_in_thread() -> None:
        connections["default"].ensure_connection()  # left open by earlier work here
        seen["before"] = connections["default"].connection is not None

        def task(_run: Any) -> TaskResult:
            seen["during"] = connections["default"].connection
            connections["default"].ensure_connection()  # the task uses the ORM
            return TaskResult()

        DjangoConnections().handle(Any, task)  # type: ignore[arg-type]
        seen["after"] = connections["default"].connection

    thread = threading.Thread(target=run_in_thread)
    thread.start()
    thread.join()
    assert seen == {"before": True, "during": None, "after": None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in \
        Path(f"/proc/{pid}/status").read_text().lower()


def _wait(check: Any, seconds: float = 20) -> bool:
    return wait_for(check, seconds)


def test_loading_the_app_starts_nothing_and_connects_nowhere(
        django_project: dict[str, str]) -> None:
    """AppConfig.ready() (and the system checks) in a fresh process: no scheduler thread, no
    database connection; the coordinator is its own command."""
    from tests.django_app.drive import manage

    script = ("import threading; from django.core.management import call_command; "
              "from django.db import connections; call_command('check', verbosity=0); "
              "print(sorted(t.name for t in threading.enumerate()), "
              "[a for a in ('default', 'lite') if connections[a].connection is not None])")
    done = manage("shell", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['MainThread'] []", done.stdout
