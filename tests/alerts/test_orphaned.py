"""Alerts about what has left the config (a target, a task, a schedule, a task's target, a
watched disk, the last backup task of a target under the default freshness rule) are
resolved by a health check once nothing has seen them for the grace period: nothing else would
ever judge them again, and they would fire for ever. One seen lately stays: another process
sharing the store, with another config, may still be judging it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.helpers import run_cli
from tests.servers import http_capture
from wellkept.alerts import AlertCenter
from wellkept.alerts.center import ORPHAN_GRACE
from wellkept.config import load_config
from wellkept.history.schema import alerts
from wellkept.history.store import HistoryStore
from wellkept.records import utcnow

STALE = [("target_down", "old-db", ""),                    # a target removed
         ("task_failure", "app", "removed-task"),          # a task removed
         ("backup_freshness", "app", "old-freshness"),     # its rule's task removed
         ("task_failure", "other", "purge"),               # purge no longer runs on other
         ("missed_schedule", "old-schedule", "old-schedule"),  # a schedule removed
         ("missed_schedule", "weekly", "weekly"),          # a schedule disabled
         ("disk_percent", "host", "/srv/old-volume"),      # a disk no longer watched
         ("backup_freshness", "app", "backup_freshness")]  # app's backup task removed
KEPT = [("task_failure", "app", "purge"),                  # still configured
        ("task_failure", "app", "vacuum"),                 # a kind run directly
        ("missed_schedule", "nightly", "nightly"),         # still configured
        ("query_seconds", "app", ""),                      # a figure of a target kept
        ("backup_freshness", "other", "backup_freshness"),  # other still has a backup task
        ("backup_freshness", "reports", "backup_freshness"),  # judged by direct kind runs
        ("disk_percent", "host", "DATA")]                  # a health instance's own disk
SEEN_LATELY = [("target_down", "other-config-db", "")]    # gone here, seen elsewhere lately


def test_a_health_check_resolves_the_alerts_of_what_left_the_config(
        app_db: Path, write_config: Callable[[str], Path]) -> None:
    with http_capture() as hooks:
        config = write_config(f"""
            state: sqlite:///state.db
            targets:
              app: {{url: "sqlite:///{app_db}"}}
              other: {{url: "sqlite:///{app_db}"}}
              reports: {{url: "sqlite:///{app_db}"}}
            tasks:
              purge: {{kind: cleanup, target: app, table: events, date_column: created_at,
                      retention: 30d}}
              other-backup: {{kind: backup, target: other, destination: backups/}}
              health-check: {{kind: health}}
              data-health: {{kind: health, disks: [data]}}
            schedules:
              nightly: {{cron: "0 2 * * *", tasks: [purge]}}
              weekly: {{cron: "0 3 * * 0", tasks: [purge], enabled: false}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}}}}
            """)
        (config.parent / "data").mkdir()
        # `wellkept run backup_freshness --target reports` from cron judges reports' alert
        direct = run_cli("-c", str(config), "run", "backup_freshness", "--target", "reports")
        assert "reports" in direct.stdout, direct.stderr
        settings = load_config(config)
        kept = [(n, t, str(config.parent / "data") if s == "DATA" else s) for n, t, s in KEPT]
        store = HistoryStore(settings.state)
        try:
            center = AlertCenter(settings.alerts, store)
            already = len(hooks)
            for name, target, subject in STALE + kept + SEEN_LATELY:
                center.raise_alert(name, target, "warning", f"{name} on {target} {subject}",
                                   subject=subject)
            with store.engine.begin() as conn:  # last seen before the grace period
                conn.execute(alerts.update().where(alerts.c.target != "other-config-db")
                             .values(last_seen_at=utcnow() - ORPHAN_GRACE - timedelta(minutes=1)))
        finally:
            store.close()
        assert len(hooks) == already + 15  # the reports alert was firing already

        done = run_cli("-c", str(config), "health", "-o", "json")
        assert done.returncode == 0, done.stderr
        store = HistoryStore(settings.state)
        try:
            with store.engine.connect() as conn:
                firing = {tuple(r) for r in conn.execute(
                    sa.select(alerts.c.name, alerts.c.target, alerts.c.subject)
                    .where(alerts.c.state == "firing"))}
        finally:
            store.close()
        assert firing == set(kept + SEEN_LATELY)
        sent = hooks.alerts("event", "name", "target", "message")[already + 15:]
        assert {(name, target, message) for event, name, target, message in sent
                if event == "resolved"} == {
            ("target_down", "old-db", "target old-db is no longer in the config: resolved"),
            ("task_failure", "app", "task removed-task is no longer in the config: resolved"),
            ("backup_freshness", "app",
             "task old-freshness is no longer in the config: resolved"),
            ("task_failure", "other", "task purge no longer runs on other: resolved"),
            ("missed_schedule", "old-schedule",
             "schedule old-schedule is no longer in the config: resolved"),
            ("missed_schedule", "weekly", "schedule weekly is disabled: resolved"),
            ("disk_percent", "host", "disk /srv/old-volume is no longer checked "
                                     "(health.disks): resolved"),
            ("backup_freshness", "app", "app has no backup task any more: resolved")}
        assert len(sent) == 8
        # the next check finds nothing more to resolve
        run_cli("-c", str(config), "health", "-o", "json")
        assert len(hooks) == already + 23
