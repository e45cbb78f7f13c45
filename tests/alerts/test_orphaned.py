"""Alerts about what has left the config (a target, a task, a schedule) are resolved by the next
health check: nothing else would ever judge them again, and they would fire for ever."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import run_cli
from tests.servers import http_capture
from wellkept.alerts import AlertCenter
from wellkept.config import load_config
from wellkept.history.store import HistoryStore


def test_a_health_check_resolves_the_alerts_of_what_left_the_config(
        app_db: Path, write_config: Callable[[str], Path]) -> None:
    with http_capture() as hooks:
        config = write_config(f"""
            state: sqlite:///state.db
            targets:
              app: {{url: "sqlite:///{app_db}"}}
            tasks:
              purge: {{kind: cleanup, target: app, table: events, date_column: created_at,
                      retention: 30d}}
            schedules:
              nightly: {{cron: "0 2 * * *", tasks: [purge]}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}}}}
            """)
        settings = load_config(config)
        store = HistoryStore(settings.state)
        center = AlertCenter(settings.alerts, store)
        for name, target, subject in [
                ("target_down", "old-db", ""),                   # a target removed
                ("task_failure", "app", "removed-task"),         # a task removed
                ("backup_freshness", "app", "old-freshness"),    # its rule's task removed
                ("missed_schedule", "old-schedule", ""),         # a schedule removed
                ("task_failure", "app", "purge"),                # still configured
                ("task_failure", "app", "vacuum"),               # a kind run directly
                ("missed_schedule", "nightly", ""),              # still configured
                ("query_seconds", "app", "")]:                   # a figure of a target kept
            center.raise_alert(name, target, "warning", f"{name} on {target} {subject}",
                               subject=subject)
        store.close()
        assert len(hooks) == 8

        done = run_cli("-c", str(config), "health", "-o", "json")
        assert done.returncode == 0, done.stderr
        store = HistoryStore(settings.state)
        try:
            firing = {(a["name"], a["target"], a.get("subject") or "")
                      for a in AlertCenter(settings.alerts, store).firing()}
        finally:
            store.close()
        assert firing == {("task_failure", "app", "purge"), ("task_failure", "app", "vacuum"),
                          ("missed_schedule", "nightly", ""), ("query_seconds", "app", "")}
        sent = hooks.alerts("event", "name", "target", "message")[8:]
        resolved = {(name, target, message) for event, name, target, message in sent
                    if event == "resolved"}
        assert len(sent) == len(resolved) == 4
        assert resolved == {
            ("target_down", "old-db", "target old-db is no longer in the config: resolved"),
            ("task_failure", "app", "task removed-task is no longer in the config: resolved"),
            ("backup_freshness", "app",
             "task old-freshness is no longer in the config: resolved"),
            ("missed_schedule", "old-schedule",
             "schedule old-schedule is no longer in the config: resolved")}
        # the next check finds nothing more to resolve
        run_cli("-c", str(config), "health", "-o", "json")
        assert len(hooks) == 12
        report = json.loads(done.stdout)
        assert report["status"] in ("healthy", "degraded")
