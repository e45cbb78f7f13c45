"""`wellkept health` against the real services, and against real faults: a refused port, a
blackholed socket, a DuckDB file held by another process, a connector that crashes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.helpers import free_port, run_cli
from tests.servers import blackhole, duckdb_holder
from wellkept.config import load_config
from wellkept.registry import Registry

KEYS = {"timestamp", "status", "score", "targets", "host", "alerts", "errors"}


@pytest.fixture
def duck(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE prices AS SELECT range AS id FROM range(1000)")
    conn.close()
    return path


def five_targets(postgres_db: str, mysql_db: str, redis_url: str, duck: Path,
                 app_db: Path) -> str:
    return f"""
        targets:
          app:   {{url: "{postgres_db}", timeout: 3s}}
          shop:  {{url: "{mysql_db}", timeout: 3s}}
          cache: {{url: "{redis_url}", timeout: 3s}}
          analytics: {{url: "duckdb:///{duck}", timeout: 3s}}
          local: {{url: "sqlite:///{app_db}", timeout: 3s}}
        health: {{disks: [/, .]}}
        """


def health(config: Path, *extra: str) -> tuple[int, dict[str, object], str, float]:
    t0 = time.monotonic()
    proc = run_cli("-c", str(config), "health", "-o", "json", *extra)
    elapsed = time.monotonic() - t0
    return proc.returncode, json.loads(proc.stdout), proc.stderr, elapsed


def test_all_targets_up_is_healthy_and_quick(postgres_db: str, mysql_db: str, redis_url: str,
                                             duck: Path, app_db: Path,
                                             write_config: Callable[[str], Path]) -> None:
    config = write_config(five_targets(postgres_db, mysql_db, redis_url, duck, app_db))
    code, report, stderr, elapsed = health(config)
    assert code == 0, stderr
    assert set(report) == KEYS
    targets = report["targets"]
    assert isinstance(targets, dict)
    assert {n: t["status"] for n, t in targets.items()} == dict.fromkeys(
        ["analytics", "app", "cache", "local", "shop"], "up")
    for row in targets.values():
        assert row["error"] is None and row["latency_ms"] >= 0
    # the figures thresholds are judged on
    assert targets["app"]["details"]["connection_percent"] > 0
    assert targets["shop"]["details"]["max_connections"] > 0
    assert "used_memory_bytes" in targets["cache"]["details"]
    host = report["host"]
    assert isinstance(host, dict)
    assert [d["path"] for d in host["disk"]] == ["/", str(config.parent)]
    assert 0 <= host["cpu_percent"] <= 100 and 0 < host["memory_percent"] <= 100
    assert report["errors"] == []
    # the goal is under 1 s (see bench/health.py); here only the behaviour, with a wide margin
    # for a machine shared with other work
    assert elapsed < 5, elapsed
    if report["status"] == "healthy":  # a busy shared machine may pass the CPU threshold
        assert report["score"] == 100.0
    # the run is in the history, its details the report itself
    hist = run_cli("-c", str(config), "history", "--task", "health", "-o", "json")
    run = json.loads(hist.stdout)[0]
    assert run["kind"] == "health" and run["status"] == "completed"
    assert run["details"]["targets"] == report["targets"]


def test_a_refused_port_is_down_and_logged_once(write_config: Callable[[str], Path],
                                               redis_url: str) -> None:
    port = free_port()
    config = write_config(f"""
        targets:
          app: {{url: "postgresql://postgres@127.0.0.1:{port}/app", timeout: 2s}}
          cache: {{url: "{redis_url}"}}
        """)
    code, report, stderr, _ = health(config)
    assert code == 1
    app = report["targets"]["app"]  # type: ignore[index]
    assert app["status"] == "down" and "refused" in app["error"].lower()
    assert report["targets"]["cache"]["status"] == "up"  # type: ignore[index]
    assert report["status"] == "unhealthy"
    # two targets and the host, one down: (0 + 1 + host) / 3
    assert report["score"] in (66.7, 50.0, 33.3)
    assert [e for e in report["errors"] if e.startswith("app: ")]  # type: ignore[union-attr]
    assert {a["name"] for a in report["alerts"]} >= {"target_down"}  # type: ignore[union-attr]
    assert stderr.count("WARNING wellkept.health: app is down") == 1
    assert "Traceback" not in stderr and "ERROR" not in stderr
    # the next check finds it still down: no new warning (seed 000's flood of logs)
    code, report, stderr, _ = health(config)
    assert code == 1 and report["targets"]["app"]["status"] == "down"  # type: ignore[index]
    assert "app is down" not in stderr and "alert target_down" not in stderr


def test_a_blackholed_target_costs_no_more_than_its_timeout(
        write_config: Callable[[str], Path], postgres_db: str, redis_url: str) -> None:
    with blackhole() as port:
        config = write_config(f"""
            targets:
              app:   {{url: "{postgres_db}", timeout: 3s}}
              cache: {{url: "{redis_url}", timeout: 3s}}
              lost:  {{url: "redis://127.0.0.1:{port}/0", timeout: 2s}}
              lostpg: {{url: "postgresql://postgres@127.0.0.1:{port}/x", timeout: 1s}}
            """)
        baseline = time.monotonic()
        run_cli("-c", str(config), "history", "--limit", "1")  # startup, store opened
        startup = time.monotonic() - baseline
        code, report, _, elapsed = health(config)
    targets = report["targets"]
    assert isinstance(targets, dict)
    assert targets["lost"]["status"] == "down" and targets["lostpg"]["status"] == "down"
    assert targets["app"]["status"] == "up" and targets["cache"]["status"] == "up"
    assert code == 1
    # the largest timeout of the hung targets is 2 s; the goal is that plus 0.5 s for the
    # check (bench/health.py measures it), here a generous bound over the command's startup
    assert elapsed < 2 + 0.5 + startup + 2.5, (elapsed, startup)
    assert elapsed >= 1.0  # it did wait for the hung ones


def test_a_duckdb_file_held_by_another_process_is_locked_and_healthy(
        duck: Path, write_config: Callable[[str], Path]) -> None:
    config = write_config(f"""
        targets:
          analytics: {{url: "duckdb:///{duck}"}}
        alerts: {{thresholds: {{cpu_percent: {{warning: 101}}, memory_percent: {{}},
                                disk_percent: {{}}}}}}
        """)
    with duckdb_holder(duck) as holder:
        code, report, stderr, _ = health(config)
    row = report["targets"]["analytics"]  # type: ignore[index]
    assert row["status"] == "locked"
    assert row["details"]["holder_pid"] == holder.pid
    assert report["status"] == "healthy" and report["score"] == 100.0
    assert report["errors"] == [] and code == 0
    assert "WARNING" not in stderr and "ERROR" not in stderr


def test_a_figure_past_its_warning_threshold_degrades_the_target(
        postgres_db: str, write_config: Callable[[str], Path]) -> None:
    config = write_config(f"""
        targets:
          app: {{url: "{postgres_db}"}}
        alerts:
          thresholds:
            connection_percent: {{warning: 0.01, critical: 99}}
            query_seconds: {{}}
            replication_lag_seconds: {{}}
            cpu_percent: {{}}
            memory_percent: {{}}
            disk_percent: {{}}
        """)
    code, report, _, _ = health(config)
    app = report["targets"]["app"]  # type: ignore[index]
    assert app["status"] == "degraded"
    assert "connections in use" in app["details"]["degraded"]
    assert report["status"] == "degraded" and code == 0
    assert report["score"] == 75.0  # (0.5 + 1) / 2
    alerts = [a for a in report["alerts"] if a["name"] == "connection_percent"]  # type: ignore[union-attr]
    assert alerts and alerts[0]["severity"] == "warning" and alerts[0]["target"] == "app"


def test_a_crashing_connector_is_an_error_for_that_target_only(
        tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from wellkept.health import check_health
    from wellkept.history.store import HistoryStore

    (tmp_path / "wellkept.yml").write_text(f"""
targets:
  boom: {{url: "boom://nowhere"}}
  cache: {{url: "{redis_url}"}}
""")
    registry = Registry.default()
    registry.connectors["boom"] = "tests.health.crashing:Crashing"
    settings = load_config(tmp_path / "wellkept.yml", registry=registry)
    store = HistoryStore(settings.state)
    with caplog.at_level(logging.INFO, logger="wellkept"):
        report = check_health(settings, registry, store=store)
    store.close()
    assert report["targets"]["boom"]["status"] == "down"
    assert "RuntimeError: a bug" in report["targets"]["boom"]["error"]
    assert report["targets"]["cache"]["status"] == "up"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "checking boom crashed" in errors[0].getMessage()
    assert "Traceback" in errors[0].getMessage()


def test_a_disk_path_that_cannot_be_read_makes_the_check_degraded(
        app_db: Path, write_config: Callable[[str], Path]) -> None:
    """A `health.disks` path that is missing (a typo, a folder not made yet) leaves that disk
    unwatched: the check says so in `errors` and is `degraded`, not `healthy`."""
    config = write_config(f"""
        targets:
          local: {{url: "sqlite:///{app_db}"}}
        health: {{disks: [/, ./no-such-folder]}}
        alerts: {{thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}}}}}}
        """)
    code, report, stderr, _ = health(config)
    assert code == 0, stderr  # degraded, not unhealthy: nothing is known to be wrong
    assert report["status"] == "degraded"
    assert report["score"] == 75.0  # the target 1, the host 0.5: (1 + 0.5) / 2
    missing = config.parent / "no-such-folder"
    assert [d["path"] for d in report["host"]["disk"]] == ["/"]  # type: ignore[index]
    assert report["errors"] == [f"host: disk {missing}: No such file or directory"]
    assert report["targets"]["local"]["status"] == "up"  # type: ignore[index]
    # the same config with the folder there is healthy again
    missing.mkdir()
    code, report, stderr, _ = health(config)
    assert (code, report["status"], report["score"], report["errors"]) == (
        0, "healthy", 100.0, []), stderr
