"""`wellkept metrics` and the textfile: CONTRACT §5's names, postgres_exporter's where they
overlap, and `promtool check metrics` on the output."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_cli

CONTRACT = ["wellkept_task_runs_total", "wellkept_task_duration_seconds",
            "wellkept_task_last_success_timestamp_seconds", "wellkept_task_running",
            "wellkept_task_missed_runs_total", "wellkept_task_recoveries_total",
            "wellkept_rows_deleted_total", "wellkept_bytes_freed_total", "wellkept_target_up",
            "wellkept_health_score", "wellkept_backup_last_verified_timestamp_seconds",
            "wellkept_scheduler_last_tick_timestamp_seconds", "wellkept_recovery_queue_depth"]


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make tools` installs the Debian package prometheus",
                    pytrace=False)
    return subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60, check=False)


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_exposition_has_the_contract_names_and_passes_promtool(
        write_config: Callable[[str], Path], app_db: Path, postgres_db: str,
        postgres_admin_url: str, tmp_path: Path) -> None:
    import psycopg

    textfile = tmp_path / "textfile" / "wellkept.prom"
    config = write_config(f"""
        targets:
          local: {{url: "sqlite:///{app_db}"}}
          app: {{url: "{postgres_db}"}}
        tasks:
          purge: {{kind: cleanup, target: local, table: events, date_column: created_at,
                   retention: 30d}}
          vac: {{kind: vacuum, target: local, force: true}}
          pg-stats: {{kind: stats, target: app}}
          backup: {{kind: backup, target: local, destination: backups/, verify: readable}}
        metrics: {{textfile: {textfile}}}
        """)
    # sessions on another database of the same server: postgres_exporter's numbackends for
    # this database must not count them
    elsewhere = [psycopg.connect(postgres_admin_url) for _ in range(6)]
    try:
        ran = run_cli("-c", str(config), "run", "--all")
    finally:
        for conn in elsewhere:
            conn.close()
    assert ran.returncode == 0, ran.stderr
    assert run_cli("-c", str(config), "health").returncode in (0, 1)
    proc = run_cli("-c", str(config), "metrics")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for name in CONTRACT:
        assert f"# TYPE {name} " in text, name
    checked = promtool(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = samples(text)
    assert found['wellkept_rows_deleted_total{target="local",task="purge"}'] == 3000
    assert found['wellkept_bytes_freed_total{target="local",task="vac"}'] > 0
    assert found['wellkept_target_up{target="app"}'] == 1
    assert 0 <= found["wellkept_health_score"] <= 100
    assert found['wellkept_task_running{task="purge"}'] == 0
    assert 'wellkept_backup_last_verified_timestamp_seconds{target="local"}' in found
    assert found['wellkept_task_runs_total{kind="cleanup",status="completed",target="local",'
                 'task="purge",trigger="manual"}'] == 1
    assert found['wellkept_task_duration_seconds_count{task="purge"}'] == 1
    assert "run_id" not in text
    # postgres_exporter's names for the same figures
    datname = postgres_db.rsplit("/", 1)[1]
    assert found['pg_up{target="app"}'] == 1
    assert found[f'pg_database_size_bytes{{datname="{datname}",target="app"}}'] > 0
    # this database's backends (the stats run's own session, perhaps an autovacuum worker),
    # not the server's sessions on every database
    assert 1 <= found[f'pg_stat_database_numbackends{{datname="{datname}",target="app"}}'] <= 3
    # the textfile was rewritten after the last run, and passes promtool too
    written = textfile.read_text()
    assert "wellkept_task_runs_total" in written
    assert promtool(written).returncode == 0
    assert not list(textfile.parent.glob("*.tmp*"))  # written beside and renamed over


def test_an_unwritable_textfile_never_fails_the_run(write_config: Callable[[str], Path],
                                                    app_db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = write_config(f"""
        targets:
          local: {{url: "sqlite:///{app_db}"}}
        metrics: {{textfile: {blocker}/wellkept.prom}}
        """)
    proc = run_cli("-c", str(config), "run", "stats", "--target", "local")
    assert proc.returncode == 0
    assert "WARNING wellkept.metrics: metrics textfile" in proc.stderr
