"""Backup freshness is judged after every health check and every run, not only by
`backup_freshness` runs: through the real CLI, with the alert rows checked in the store and the
notifications received by a local webhook."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.helpers import make_app_db, run_cli
from tests.servers import Captured, http_capture
from wellkept.history.schema import alerts

#: no host figure alerts: the shared machine's load is not these tests' business
QUIET = "thresholds: {cpu_percent: {}, memory_percent: {}, disk_percent: {}}"


def _alerts(config: Path) -> list[dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{config.parent / '.wellkept' / 'state.db'}")
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(alerts).order_by(alerts.c.id))
                .mappings()]
    engine.dispose()
    return [r for r in rows if r["name"] == "backup_freshness"]


def _cli(config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli("-c", str(config), *args, "-o", "json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _events(hooks: Captured) -> list[tuple[str, ...]]:
    return hooks.alerts("name", "target", "subject", "event")


def test_a_stale_backup_fires_at_the_health_check_and_one_alert_serves_runs_too(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    make_app_db(tmp_path / "app.sqlite3", old=20, fresh=20)
    with http_capture() as hooks:
        config = write_config(f"""
            targets:
              app: {{url: "sqlite:///app.sqlite3"}}
            tasks:
              app-backup: {{kind: backup, target: app, destination: backups/, verify: checksum}}
              app-fresh: {{kind: backup_freshness, target: app, rpo: 3s}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              {QUIET}
            """)
        code, batch, _ = _cli(config, "run", "app-backup")
        assert code == 0, batch
        assert hooks == [] and _alerts(config) == []  # judged after the run: fresh
        backup_id = batch["results"][0]["details"]["backup_id"]

        time.sleep(3.2)  # older than the RPO now; no backup_freshness run is coming
        code, report, stderr = _cli(config, "health")
        assert code == 1 and report["status"] == "unhealthy", stderr  # critical alert
        assert report["score"] == 100.0  # the targets answer and the host is fine
        (alert,) = [a for a in report["alerts"] if a["name"] == "backup_freshness"]
        assert (alert["target"], alert["subject"], alert["severity"]) == (
            "app", "app-fresh", "critical")
        assert alert["message"].startswith(f"the newest verified backup of app, {backup_id}, is")
        assert alert["message"].endswith("old, older than the RPO of 3s")  # no "newer" part
        assert _events(hooks) == [("backup_freshness", "app", "app-fresh", "firing")]
        (row,) = _alerts(config)
        assert (row["target"], row["subject"], row["state"], row["severity"]) == (
            "app", "app-fresh", "firing", "critical")
        assert row["value"] >= 3 and row["notified_at"] is not None

        # the check again, then the instance's own run: the same alert, seen again (dedupe),
        # neither notified again nor doubled by a task_failure alert
        code, report, _ = _cli(config, "health")
        assert code == 1
        code, batch, _ = _cli(config, "run", "app-fresh")
        assert code == 1 and batch["results"][0]["status"] == "failed"
        assert len(hooks) == 1
        assert [(r["subject"], r["state"]) for r in _alerts(config)] == [
            ("app-fresh", "firing")]

        # a fresh backup: judged right after its run, the alert resolves
        code, batch, _ = _cli(config, "run", "app-backup")
        assert code == 0
        assert _events(hooks)[1:] == [("backup_freshness", "app", "app-fresh", "resolved")]
        code, report, _ = _cli(config, "health")
        assert code == 0 and report["status"] == "healthy", report
        assert len(hooks) == 2 and report["alerts"] == []

        # stale again; then the RPO is raised in the config: the next health check resolves
        # (this episode is within the cooldown of the last notification: recorded, not sent)
        time.sleep(3.2)
        assert _cli(config, "health")[0] == 1
        assert [r["state"] for r in _alerts(config)] == ["resolved", "firing"]
        config.write_text(config.read_text().replace("rpo: 3s", "rpo: 1h"))
        code, report, _ = _cli(config, "health")
        assert code == 0 and report["status"] == "healthy"
        assert len(hooks) == 2
    assert [r["state"] for r in _alerts(config)] == ["resolved", "resolved"]


def test_a_target_with_backups_and_no_rpo_gets_the_kinds_default(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """No backup_freshness instance: a target with a backup task is judged by the kind's
    defaults (1 day, checksum), under the key `wellkept run backup_freshness --target` uses,
    once its first backup is catalogued; a target with no backup task is not judged."""
    make_app_db(tmp_path / "app.sqlite3", old=20, fresh=20)
    with http_capture() as hooks:
        config = write_config(f"""
            targets:
              app: {{url: "sqlite:///app.sqlite3"}}
              other: {{url: "sqlite:///app.sqlite3"}}
            tasks:
              app-backup: {{kind: backup, target: app, destination: backups/, verify: none}}
              app-stats: {{kind: stats, target: app}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              {QUIET}
            """)
        # the first backup is still to come: not an alert by default
        code, batch, _ = _cli(config, "run", "app-stats")
        assert code == 0 and hooks == [] and _alerts(config) == []

        # a backup nobody verified does not count: judged right after its own run
        code, batch, _ = _cli(config, "run", "app-backup")
        assert code == 0
        backup_id = batch["results"][0]["details"]["backup_id"]
        assert _events(hooks) == [("backup_freshness", "app", "backup_freshness", "firing")]
        (row,) = _alerts(config)
        assert row["value"] is None and row["severity"] == "critical"
        assert row["message"] == "no backup of app has been verified (to checksum or better)"
        code, report, _ = _cli(config, "health")
        assert code == 1
        assert [(a["target"], a["message"]) for a in report["alerts"]] == [
            ("app", "no backup of app has been verified (to checksum or better)")]
        assert len(hooks) == 1  # the same alert, seen again

        # the kind run by hand speaks for the same alert: no second one
        code, batch, _ = _cli(config, "run", "backup_freshness", "--target", "app")
        assert code == 1 and len(hooks) == 1 and len(_alerts(config)) == 1

        # verified now (a verify_backup run): judged after that run, resolved
        code, _, stderr = _cli(config, "backups", "verify", backup_id, "--tier", "checksum")
        assert code == 0, stderr
        assert _events(hooks)[1:] == [("backup_freshness", "app", "backup_freshness",
                                       "resolved")]

        # the target gets its own instance: the default's key is no longer judged, and the
        # instance's own key takes over
        config.write_text(config.read_text().replace(
            "  app-stats:", "  app-fresh: {kind: backup_freshness, target: app, rpo: 1s}\n"
                            "  app-stats:"))
        time.sleep(1.1)
        code, report, _ = _cli(config, "health")
        assert code == 1
        assert [(a["subject"], a["severity"]) for a in report["alerts"]] == [
            ("app-fresh", "critical")]
    assert {(r["target"], r["subject"], r["state"]) for r in _alerts(config)} == {
        ("app", "backup_freshness", "resolved"), ("app", "app-fresh", "firing")}
    assert all(r["target"] != "other" for r in _alerts(config))


def test_a_catalog_that_cannot_be_read_fails_neither_the_check_nor_the_run(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    make_app_db(tmp_path / "app.sqlite3", old=20, fresh=20)
    config = write_config(f"""
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
        tasks:
          app-backup: {{kind: backup, target: app, destination: backups/, verify: checksum}}
          app-stats: {{kind: stats, target: app}}
        alerts: {{{QUIET}}}
        """)
    assert _cli(config, "run", "app-backup")[0] == 0
    # the store loses its catalog table (a broken migration, a hand-made mistake): the
    # freshness read fails for real
    state = sqlite3.connect(config.parent / ".wellkept" / "state.db")
    state.execute("ALTER TABLE wk_backups RENAME TO wk_backups_lost")
    state.commit()
    state.close()
    code, report, stderr = _cli(config, "health")
    assert code == 0 and report["status"] == "healthy", stderr
    assert "backup freshness could not be judged" in stderr
    assert "Traceback" not in stderr
    code, batch, stderr = _cli(config, "run", "app-stats")
    assert code == 0 and batch["results"][0]["status"] == "completed", stderr
    assert "backup freshness could not be judged" in stderr
