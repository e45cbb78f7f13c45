"""`wellkept demo`, `init`, `check`, `tasks` and `--help`, as a newcomer would use them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, run_cli


def test_demo_cleans_then_finds_nothing_left(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = run_cli("demo", "--dir", str(folder), "-o", "json", timeout=60)
    assert first.returncode == 0, first.stderr
    runs = {r["task"]: r for r in json.loads(first.stdout)["results"]}
    assert all(r["status"] == "completed" for r in runs.values()), runs
    assert runs["purge-sessions"]["metrics"]["rows_deleted"] == 50_000
    assert runs["purge-audit-log"]["metrics"]["rows_deleted"] > 50_000
    assert runs["purge-deleted-customers"]["metrics"]["rows_deleted"] > 0
    assert runs["app-vacuum"]["metrics"]["bytes_freed"] > 10_000_000
    backup = Path(runs["app-backup"]["details"]["path"])
    assert backup.exists() and (folder / ".wellkept" / "state.db").exists()

    conn = sqlite3.connect(folder / "app.sqlite3")
    expired = conn.execute("SELECT count(*) FROM django_session "
                           "WHERE expire_date < datetime('now')").fetchone()[0]
    live = conn.execute("SELECT count(*) FROM django_session").fetchone()[0]
    conn.close()
    assert expired == 0 and live == 50_000

    second = run_cli("demo", "--dir", str(folder), "-o", "json", timeout=60)
    assert second.returncode == 0, second.stderr
    again = {r["task"]: r for r in json.loads(second.stdout)["results"]}
    assert sum(r["metrics"].get("rows_deleted", 0) for r in again.values()) == 0
    assert again["app-vacuum"]["metrics"]["bytes_freed"] == 0

    text = run_cli("demo", "--dir", str(folder), timeout=60)
    assert "daily maintenance cycle" in text.stdout and "history:" in text.stdout
    assert "nothing to delete" in text.stdout


def test_init_writes_a_valid_config_with_five_schedules(tmp_path: Path) -> None:
    cfg = tmp_path / "wellkept.yml"
    assert run_cli("init", "--path", str(cfg)).returncode == 0
    assert run_cli("init", "--path", str(cfg)).returncode == 2  # no silent overwrite
    listing = run_cli("-c", str(cfg), "check", "-o", "json")
    assert listing.returncode == 1  # the starter's app.sqlite3 does not exist yet
    app = {t["target"]: t for t in json.loads(listing.stdout)["targets"]}["app"]
    assert app["status"] == "down" and "app.sqlite3" in app["error"]
    sqlite3.connect(tmp_path / "app.sqlite3").execute("CREATE TABLE t (x)").connection.close()
    assert run_cli("-c", str(cfg), "check").returncode == 0
    from wellkept.config import load_config

    settings = load_config(cfg)
    assert {n: s.cron for n, s in settings.schedules.items()} == {
        "daily_maintenance": "0 2 * * *", "weekly_optimization": "0 3 * * 0",
        "monthly_deep_maintenance": "0 4 1 * *", "backup_testing": "0 5 * * 6",
        "disaster_recovery_test": "0 6 1 * *"}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A socket that accepts connections and never answers (a hung server)."""
    from tests.servers import blackhole

    with blackhole() as port:
        yield port


def test_check_pings_every_engine(write_config: Callable[..., Path], app_db: Path,
                                  postgres_admin_url: str, mysql_url: str, redis_url: str,
                                  silent_server: int, tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "a.duckdb")).close()
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
          pg: {{url: "{postgres_admin_url}"}}
          shop: {{url: "{mysql_url}"}}
          cache: {{url: "{redis_url}"}}
          lake: {{url: "duckdb:///a.duckdb"}}
        """)
    proc = run_cli("-c", str(cfg), "check", "-o", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = {t["target"]: t["status"] for t in json.loads(proc.stdout)["targets"]}
    assert status == {"app": "up", "pg": "up", "shop": "up", "cache": "up", "lake": "up",
                      "host": "up"}

    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
          refused: {{url: "postgresql://u:pw@127.0.0.1:{free_port()}/x", timeout: 2s}}
          hung: {{url: "redis://127.0.0.1:{silent_server}/0", timeout: 1s}}
        """, name="down.yml")
    proc = run_cli("-c", str(cfg), "check", "-o", "json", timeout=30)
    assert proc.returncode == 1
    rows = {t["target"]: t for t in json.loads(proc.stdout)["targets"]}
    assert rows["app"]["status"] == "up"
    assert rows["refused"]["status"] == "down" and rows["hung"]["status"] == "down"
    assert "pw" not in rows["refused"]["url"].replace("***", "")


def test_tasks_listing_and_detail() -> None:
    listing = json.loads(run_cli("tasks", "-o", "json").stdout)
    kinds = {k["kind"]: k for k in listing}
    assert {"vacuum", "analyze", "integrity", "stats", "cleanup", "backup"} <= set(kinds)
    assert kinds["cleanup"]["mutating"] and not kinds["stats"]["mutating"]
    assert "sqlite" in kinds["vacuum"]["engines"]
    detail = run_cli("tasks", "cleanup")
    assert detail.returncode == 0
    for needle in ("batch_size", "5000", "retention", "(required)", "heap"):
        assert needle in detail.stdout, needle
    assert run_cli("tasks", "nope").returncode == 2


def test_help_and_version() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0
    for command in ("demo", "init", "check", "tasks", "run", "history"):
        assert command in helped.stdout
    assert run_cli("--version").stdout.startswith("wellkept ")


def test_check_fails_when_the_state_store_is_unusable(write_config: Callable[..., Path],
                                                     app_db: Path) -> None:
    cfg = write_config(f"""
        state: postgresql://wellkept:pw-st@127.0.0.1:{free_port()}/state
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
        """)
    proc = run_cli("-c", str(cfg), "check", "-o", "json", timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"]["error"] and "cannot open the state store" in out["state"]["error"]
    assert "pw-st" not in proc.stdout
    assert {t["target"]: t["status"] for t in out["targets"]}["app"] == "up"
