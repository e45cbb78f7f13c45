"""backup_freshness and dr_drill through the real CLI: against SQLite, and against a private
PostgreSQL primary with a real streaming standby."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import make_app_db, run_cli, scratch_databases
from tests.pg_cluster import Cluster, new_cluster, new_standby_of


def _run(cfg: Path, *names: str) -> tuple[int, list[dict[str, Any]]]:
    done = run_cli("-c", str(cfg), "run", *names, "-o", "json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)["results"]


def _sqlite_config(write_config: Callable[..., Path], tmp_path: Path, extra: str = "") -> Path:
    make_app_db(tmp_path / "app.sqlite3", old=50, fresh=50)
    return write_config(f"""
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
        tasks:
          unverified: {{kind: backup, target: app, destination: backups/, verify: none}}
          checked: {{kind: backup, target: app, destination: backups/, verify: checksum}}
          fresh: {{kind: backup_freshness, target: app, rpo: 1h}}
          fresh-restored: {{kind: backup_freshness, target: app, rpo: 1h, tier: restore}}
          tight: {{kind: backup_freshness, target: app, rpo: 1s}}
        {extra}""")


def test_backup_freshness_counts_only_verified_backups(write_config: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    cfg = _sqlite_config(write_config, tmp_path)
    code, (result,) = _run(cfg, "fresh")
    assert code == 1 and result["status"] == "failed"
    assert result["message"] == "no backup of app in the catalog"

    _run(cfg, "unverified")
    code, (result,) = _run(cfg, "fresh")
    assert code == 1 and "no backup of app has been verified" in result["message"]
    assert result["details"]["newest"]["verify_status"] is None

    _run(cfg, "checked")
    code, (result,) = _run(cfg, "fresh")
    assert code == 0 and result["status"] == "completed", result
    assert "within the RPO of 1h (verified: checksum)" in result["message"]
    assert 0 <= result["metrics"]["backup_age_seconds"] < 60
    assert result["metrics"]["rpo_seconds"] == 3600

    # checksum is not enough where a restore is asked for
    code, (result,) = _run(cfg, "fresh-restored")
    assert code == 1 and "verified (to restore or better)" in result["message"]

    # a newer backup that nobody verified does not move the recovery point
    time.sleep(1.2)
    _run(cfg, "unverified")
    code, (result,) = _run(cfg, "tight")
    assert code == 1
    assert "older than the RPO of 1s" in result["message"]
    assert "is unverified" in result["message"]


def _drill_config(write_config: Callable[..., Path], url: str, extra: str = "") -> Path:
    return write_config(f"""
        targets:
          db: {{url: "{url}"}}
        tasks:
          backup: {{kind: backup, target: db, destination: backups/, verify: checksum}}
          drill:
            kind: dr_drill
            target: db
            rpo: 1h
            smoke_queries: ["SELECT count(*) FROM orders"]
            documents: [docs/disaster_recovery.md]
            scripts: [scripts/restore_from_backup.sh]
        {extra}""")


def _recovery_files(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "disaster_recovery.md").write_text("# How we recover\n")
    (root / "scripts").mkdir()
    script = root / "scripts" / "restore_from_backup.sh"
    script.write_text("#!/bin/sh\nwellkept restore \"$1\" --into \"$2\"\n")
    script.chmod(0o755)


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A private primary with one streaming standby on a physical slot."""
    primary = new_cluster()
    standby = new_standby_of(primary, slot="wk_standby")
    try:
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO orders SELECT g, md5(g::text) "
                         "FROM generate_series(1, 5000) g")
        _wait_streaming(primary)
        yield primary, standby
    finally:
        standby.remove()
        primary.remove()


def _wait_streaming(primary: Cluster) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(primary.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication "
                               "WHERE state = 'streaming'").fetchone()
            if row and row[0]:
                return
            time.sleep(0.2)
    raise AssertionError("the standby never started streaming")


def _checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["details"]["checks"]}


def test_dr_drill_on_a_primary_with_a_real_standby(
        pg_pair: tuple[Cluster, Cluster], write_config: Callable[..., Path],
        tmp_path: Path) -> None:
    primary, standby = pg_pair
    _recovery_files(tmp_path)
    cfg = _drill_config(write_config, primary.url)
    # no backup yet: availability and the restore test fail, the rest pass
    code, (result,) = _run(cfg, "drill")
    checks = _checks(result)
    assert code == 1 and result["status"] == "partial_failure"
    assert checks["backup_availability"]["status"] == "failed"
    assert checks["restore_test"]["status"] == "failed"
    assert checks["replica_readiness"]["status"] == "passed", checks["replica_readiness"]
    assert checks["replica_readiness"]["role"] == "primary"
    assert checks["recovery_documents"]["status"] == "passed"

    _run(cfg, "backup")
    before = scratch_databases(primary.url)
    done = run_cli("-v", "-c", str(cfg), "run", "drill", "-o", "json")
    code, (result,) = done.returncode, json.loads(done.stdout)["results"]
    assert "load unlogged" not in done.stderr  # the drill times a restore as a recovery does
    checks = _checks(result)
    assert code == 0 and result["status"] == "completed", result["message"]
    assert result["metrics"]["checks_passed"] == 4  # no alert channels: notifications skipped
    assert checks["restore_test"]["smoke"] == {"SELECT count(*) FROM orders": 5000}
    assert result["metrics"]["restore_seconds"] > 0
    # the drill's restore is recorded on the backup, and its scratch database is gone
    listed = json.loads(run_cli("-c", str(cfg), "backups", "list", "-o", "json").stdout)
    assert listed["backups"][0]["verify_tier"] == "restore"
    assert scratch_databases(primary.url) <= before

    # the standby goes away: its slot stays behind, and readiness fails naming it
    standby.stop()
    try:
        code, (result,) = _run(cfg, "drill")
        checks = _checks(result)
        assert code == 1 and result["status"] == "partial_failure"
        assert checks["replica_readiness"]["status"] == "failed"
        assert "slot wk_standby is disconnected" in checks["replica_readiness"]["message"]
        assert checks["restore_test"]["status"] == "passed"
    finally:
        standby.start()
        _wait_streaming(primary)


def test_dr_drill_on_the_standby_itself(pg_pair: tuple[Cluster, Cluster],
                                        write_config: Callable[..., Path],
                                        tmp_path: Path) -> None:
    """A standby is backed up (a backup only reads it), and its drill restores into a
    writable scratch server, since a standby cannot create a database."""
    primary, standby = pg_pair
    cfg = write_config(f"""
        targets:
          replica: {{url: "{standby.url}"}}
        tasks:
          backup: {{kind: backup, target: replica, destination: backups/, verify: checksum}}
          drill:
            kind: dr_drill
            target: replica
            scratch_server: "{primary.url}"
            require_replicas: true
        """)
    code, (result,) = _run(cfg, "backup")
    assert code == 0 and result["status"] == "completed", result["message"]
    code, (result,) = _run(cfg, "drill")
    checks = _checks(result)
    assert code == 0, result["message"]
    assert checks["replica_readiness"]["role"] == "replica"
    assert checks["replica_readiness"]["links"][0]["state"] == "streaming"
    assert checks["restore_test"]["status"] == "passed"
    assert checks["recovery_documents"]["status"] == "skipped"


def test_dr_drill_reports_stale_missing_and_unrunnable_documents(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    _recovery_files(tmp_path)
    stale = tmp_path / "docs" / "disaster_recovery.md"
    os.utime(stale, (time.time() - 400 * 86400,) * 2)
    (tmp_path / "scripts" / "restore_from_backup.sh").chmod(0o644)
    cfg = _sqlite_config(write_config, tmp_path, extra="""
          drill:
            kind: dr_drill
            target: app
            max_rto: "0.000001s"
            documents: [docs/disaster_recovery.md, docs/failover.md]
            scripts: [scripts/restore_from_backup.sh]
        """)
    _run(cfg, "checked")
    code, (result,) = _run(cfg, "drill")
    checks = _checks(result)
    assert code == 1 and result["status"] == "partial_failure"
    assert checks["backup_availability"]["status"] == "passed"
    assert checks["replica_readiness"]["status"] == "skipped"
    message = checks["recovery_documents"]["message"]
    assert "docs/disaster_recovery.md is stale: changed 400d ago (max 180d)" in message
    assert "docs/failover.md is missing" in message
    assert "scripts/restore_from_backup.sh is not executable" in message
    assert checks["restore_test"]["status"] == "failed"
    assert "more than max_rto" in checks["restore_test"]["message"]
    # the artifact is cut short: availability says so
    for path in (tmp_path / "backups" / "app").glob("*.zst"):
        path.write_bytes(b"short")
    code, (result,) = _run(cfg, "drill")
    assert "checks" in result["details"], result
    assert "has 5 bytes, the manifest says" in _checks(result)["backup_availability"]["message"]


def test_drills_and_verifications_of_encrypted_backups_use_the_backup_tasks_identity(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """`wellkept backups verify` and `wellkept restore` decrypt with the identity of the task
    that made the backup; a dr_drill or a verify_backup instance without an identity of its
    own did not, failed the backup's verification in the catalog, and so took a good backup
    out of the recovery point (and into retention's pruning)."""
    pyrage = pytest.importorskip("pyrage")  # an installed extra in the dev set
    identity = pyrage.x25519.Identity.generate()
    (tmp_path / "age.key").write_text(str(identity) + "\n")
    cfg = _sqlite_config(write_config, tmp_path, extra=f"""
          sealed:
            kind: backup
            target: app
            destination: backups/
            encrypt_to: "{identity.to_public()}"
            age_identity_file: age.key
            verify: readable
          drill: {{kind: dr_drill, target: app}}
          weekly-restore-test: {{kind: verify_backup, target: app, tier: restore}}
        """)
    code, (backup,) = _run(cfg, "sealed")
    assert code == 0, backup["message"]
    code, (drill,) = _run(cfg, "drill")
    checks = {c["name"]: c for c in drill["details"]["checks"]}
    assert checks["restore_test"]["status"] == "passed", checks["restore_test"]["message"]
    code, (verified,) = _run(cfg, "weekly-restore-test")
    assert code == 0 and verified["status"] == "completed", verified["message"]
    code, (fresh,) = _run(cfg, "fresh-restored")
    assert code == 0, fresh["message"]


def test_dr_drill_dry_run_checks_nothing(write_config: Callable[..., Path],
                                         tmp_path: Path) -> None:
    cfg = _sqlite_config(write_config, tmp_path, extra="""
          drill: {kind: dr_drill, target: app}
        """)
    done = run_cli("-c", str(cfg), "run", "drill", "--dry-run", "-o", "json")
    result = json.loads(done.stdout)["results"][0]
    assert done.returncode == 0 and result["dry_run"] is True
    assert result["details"]["checks"] == ["backup_availability", "restore_test",
                                           "replica_readiness", "recovery_documents",
                                           "notifications"]


def test_stale_backups_raise_a_backup_freshness_alert_then_resolve(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    from tests.servers import http_capture

    with http_capture() as hooks:
        cfg = _sqlite_config(write_config, tmp_path, extra=f"""
        alerts:
          channels: ["json://127.0.0.1:{hooks.port}/hook"]
        """)
        code, _ = _run(cfg, "fresh")
        assert code == 1
        assert len(hooks) == 1, hooks  # one alert, its own: not also a task_failure one
        alert = json.loads(hooks[0]["body"])["alert"]
        assert (alert["name"], alert["target"], alert["severity"], alert["event"]) == (
            "backup_freshness", "app", "critical", "firing")
        assert alert["message"] == "no backup of app in the catalog"
        # judged after this run already (every run looks at every instance's rule): resolved;
        # the stricter instances' alerts fire then, each under its own key
        _run(cfg, "checked")
        code, _ = _run(cfg, "fresh")
        assert code == 0
        mine = [a for a in (json.loads(h["body"])["alert"] for h in hooks)
                if a["subject"] == "fresh"]
        assert [(a["name"], a["event"]) for a in mine] == [
            ("backup_freshness", "firing"), ("backup_freshness", "resolved")]


def test_dr_drill_tests_every_alert_channel(write_config: Callable[..., Path],
                                            tmp_path: Path) -> None:
    from tests.helpers import free_port
    from tests.servers import http_capture, smtp_capture

    with smtp_capture() as (smtp_port, mails), http_capture() as hooks:
        channels = (f'["json://127.0.0.1:{hooks.port}/hook", "smtp://127.0.0.1:{smtp_port}/'
                    '?to=ops@example.com&from=wellkept@example.com"]')
        cfg = _sqlite_config(write_config, tmp_path, extra=f"""
          drill: {{kind: dr_drill, target: app, restore_test: false}}
        alerts:
          channels: {channels}
        """)
        _run(cfg, "checked")
        code, (result,) = _run(cfg, "drill")
        check = _checks(result)["notifications"]
        assert code == 0 and check["status"] == "passed", check
        # besides the test, the channels carry the alerts of this config's stricter
        # backup_freshness rules, judged after every run
        tests = [h for h in hooks if json.loads(h["body"])["alert"]["event"] == "test"]
        test_mails = [m for m in mails if m["msg"]["Subject"].startswith("[wellkept] TEST")]
        assert len(tests) == 1 and len(test_mails) == 1
        assert test_mails[0]["msg"]["Subject"] == "[wellkept] TEST: notification_test on app"
        # a channel with nothing listening fails the check, naming it
        dead = free_port()
        cfg.write_text(cfg.read_text().replace(f"127.0.0.1:{hooks.port}", f"127.0.0.1:{dead}"))
        code, (result,) = _run(cfg, "drill")
        check = _checks(result)["notifications"]
        assert code == 1 and check["status"] == "failed"
        assert f"127.0.0.1:{dead}" in check["message"]
        assert [c["delivered"] for c in check["channels"]] == [False, True]


def test_a_backup_stopped_while_verifying_keeps_its_backup_and_is_verified_next_run(
        write_config: Callable[..., Path], tmp_path: Path, monkeypatch: Any) -> None:
    """A time limit (or Ctrl-C, SIGTERM) cuts the verification short: that says nothing
    against the backup. It stays in the catalog unverified, not failed (which would take it
    out of the recovery point), the run is a partial failure, and the next run verifies the
    same backup instead of taking another."""
    import time

    from wellkept.backups.verify import Verification
    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.tasks import backup as backup_task

    cfg = _sqlite_config(write_config, tmp_path, extra="""
          slow: {kind: backup, target: app, destination: backups/, verify: restore,
                 timeout: 1s}
        """)

    def stopped_restore(*args: Any, **kwargs: Any) -> Verification:
        time.sleep(1.5)  # the restore is still loading when the limit passes; the
        # interrupted loader fails it, as a real one would
        return Verification("restore", False, "the restore was stopped")

    monkeypatch.setattr(backup_task, "verify", stopped_restore)
    engine = Engine(load_config(cfg))
    record = engine.run_one(engine.resolve(["slow"])[0])
    assert str(record.status) == "partial_failure", record.message
    assert record.message.startswith("timed out after 1s: backed up "), record.message
    assert "stopped before its verification ended" in record.message
    assert record.details["incomplete"] is True
    listed = json.loads(run_cli("-c", str(cfg), "backups", "list", "-o", "json").stdout)
    (entry,) = listed["backups"]
    assert entry["id"] == record.details["backup_id"] and entry["verify_status"] is None

    monkeypatch.undo()
    code, (again,) = _run(cfg, "slow")
    assert code == 0 and again["status"] == "completed", again["message"]
    assert again["details"]["resumed_backup"] == entry["id"]
    listed = json.loads(run_cli("-c", str(cfg), "backups", "list", "-o", "json").stdout)
    (entry,) = listed["backups"]
    assert (entry["verify_tier"], entry["verify_status"]) == ("restore", "passed")
