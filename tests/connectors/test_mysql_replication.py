"""MariaDB replication through the real CLI, against a private primary and a real replica:
`health` and `stats` report the replica's lag, the lag alert fires at the seed threshold and
resolves, and a stopped SQL thread is shown as not replicating, with the lag unknown, never 0,
and fires the `target_degraded` alert until it replicates again."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, wait_for
from tests.mariadb_pair import Server, execute, primary_and_replica, slave_status
from tests.servers import Captured, http_capture


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    with primary_and_replica(tmp_path) as servers:
        yield servers


def _health(config: Path) -> tuple[int, dict[str, Any], str]:
    done = run_cli("-c", str(config), "health", "-o", "json")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _stats(config: Path) -> dict[str, Any]:
    done = run_cli("-c", str(config), "run", "replica-stats", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] == "completed", result
    return dict(result)


def _sent(hooks: Captured) -> list[tuple[str, ...]]:
    return hooks.alerts("name", "target", "severity", "event")


def test_replica_lag_in_health_and_stats_then_a_stopped_sql_thread(
        pair: tuple[Server, Server], write_config: Callable[[str], Path]) -> None:
    primary, replica = pair
    with http_capture() as hooks:
        # the seed thresholds for the lag (5 s warning, 30 s critical); only the host's
        # figures are off, the shared machine's load is not this test's business
        config = write_config(f"""
            targets:
              primary: {{url: "{primary.url('app')}"}}
              replica: {{url: "{replica.url('app')}"}}
            tasks:
              # a short bar, so that the replica's own threads (idle or waiting for seconds
              # by now) would show if they were taken for queries
              replica-stats: {{kind: stats, target: replica, long_query_seconds: 2}}
              replica-drill: {{kind: dr_drill, target: replica, restore_test: false,
                               test_notifications: false}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}}}}
            """)
        code, report, stderr = _health(config)
        assert code == 0 and report["status"] == "healthy", stderr
        rep = report["targets"]["replica"]["details"]
        assert rep["replication_lag_seconds"] == 0 and rep["replicating"] is True
        assert report["targets"]["primary"]["details"]["replication_lag_seconds"] is None
        assert "replicating" not in report["targets"]["primary"]["details"]

        # the replica's SQL thread waits on a table lock while the primary writes: its lag
        # grows in real time, as behind a long statement on the replica
        holder = replica.connect("app")
        writer = primary.connect("app")
        try:
            execute(holder, "LOCK TABLES orders WRITE")
            execute(writer, "INSERT INTO orders VALUES (2, 20)")
            with contextlib.closing(replica.connect()) as watch:
                assert wait_for(lambda: (slave_status(watch).get("Seconds_Behind_Master")
                                         or 0) >= 6, 20), slave_status(watch)
            code, report, stderr = _health(config)
            row = report["targets"]["replica"]
            assert code == 0 and row["status"] == "degraded", stderr  # warning, not critical
            assert row["details"]["replication_lag_seconds"] >= 5
            assert "replication lag" in row["details"]["degraded"]
            # the applier waiting on the lock is not a user's long query
            assert row["details"]["query_seconds"] < 2, row["details"]
            lag = [a for a in report["alerts"] if a["name"] == "replication_lag_seconds"]
            assert [(a["target"], a["severity"]) for a in lag] == [("replica", "warning")]
            assert not [a for a in report["alerts"] if a["name"] == "query_seconds"]
            assert _sent(hooks) == [("replication_lag_seconds", "replica", "warning",
                                     "firing")]
            stats = _stats(config)
            assert stats["metrics"]["replication_lag_seconds"] >= 5
            assert stats["metrics"]["replicating"] == 1  # behind, but both threads run
            assert "replication lag" in stats["message"]
            # no client's statement ran that long: the replication threads are no queries
            assert stats["metrics"]["long_queries"] == 0, stats["details"]["long_queries"]
            assert "query_seconds" not in stats["metrics"]
        finally:
            execute(holder, "UNLOCK TABLES")
            holder.close()
            writer.close()

        # caught up: the alert resolves
        with contextlib.closing(replica.connect()) as watch:
            assert wait_for(lambda: slave_status(watch).get("Seconds_Behind_Master") == 0, 20)
            assert execute(watch, "SELECT COUNT(*) AS n FROM app.orders")[0]["n"] == 2
        code, report, _ = _health(config)
        assert report["targets"]["replica"]["status"] == "up"
        assert _sent(hooks)[1:] == [("replication_lag_seconds", "replica", "warning",
                                     "resolved")]

        # the SQL thread stopped: not replicating, the lag unknown (null), never 0
        with contextlib.closing(replica.connect()) as conn:
            execute(conn, "STOP SLAVE SQL_THREAD")
            assert slave_status(conn)["Slave_SQL_Running"] == "No"
        code, report, stderr = _health(config)
        row = report["targets"]["replica"]
        assert code == 0 and report["status"] == "degraded", stderr
        assert row["status"] == "degraded"
        assert row["details"]["replication_lag_seconds"] is None
        assert row["details"]["replicating"] is False
        assert "io=Yes sql=No" in row["details"]["degraded"]
        assert "not replicating" in row["details"]["degraded"]
        # the replica says itself that it cannot fully serve: an alert of its own
        degraded = [a for a in report["alerts"] if a["name"] == "target_degraded"]
        assert [(a["target"], a["severity"]) for a in degraded] == [("replica", "warning")]
        assert "not replicating" in degraded[0]["message"]
        assert _sent(hooks)[2:] == [("target_degraded", "replica", "warning", "firing")]
        stats = _stats(config)
        assert "replication_lag_seconds" not in stats["metrics"]
        assert stats["metrics"]["replicating"] == 0
        assert "not replicating" in stats["message"] and "lag unknown" in stats["message"]
        replication = stats["details"]["replication"]
        assert replication["lag_seconds"] is None and replication["replicating"] is False
        assert stats["metrics"]["long_queries"] == 0
        assert len(hooks) == 3  # the lag alert: neither fired nor resolved on an unknown lag
        # a DR drill's replica readiness names the stopped thread
        done = run_cli("-c", str(config), "run", "replica-drill", "-o", "json")
        (drill,) = json.loads(done.stdout)["results"]
        check = {c["name"]: c for c in drill["details"]["checks"]}["replica_readiness"]
        assert check["status"] == "failed", check
        assert f"127.0.0.1:{primary.port} is io=Yes sql=No" in check["message"]

        # replicating again: the degraded alert resolves
        with contextlib.closing(replica.connect()) as conn:
            execute(conn, "START SLAVE SQL_THREAD")
            assert wait_for(lambda: slave_status(conn).get("Seconds_Behind_Master") == 0, 20)
        code, report, stderr = _health(config)
        assert code == 0 and report["targets"]["replica"]["status"] == "up", stderr
        assert [a for a in _sent(hooks) if a[0] == "target_degraded"] == [
            ("target_degraded", "replica", "warning", "firing"),
            ("target_degraded", "replica", "warning", "resolved")]
