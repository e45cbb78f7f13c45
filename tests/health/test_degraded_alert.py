"""A target that answers but says it cannot fully serve fires `target_degraded`: a real Redis
replica whose master is gone (its own redis-server, made a replica of a port where nothing
listens), then made a master again, which resolves the alert."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import redis

from tests.helpers import free_port, private_redis, run_cli
from tests.servers import http_capture


def test_a_replica_without_its_master_fires_target_degraded_until_it_serves(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    gone = free_port()  # nothing listens there: the replica's link stays down
    with private_redis(tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(gone))) \
            as url, http_capture() as hooks:
        config = write_config(f"""
            targets:
              cache: {{url: "{url}"}}
            alerts:
              channels: ["json://127.0.0.1:{hooks.port}/hook"]
              thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}}}}
            """)
        done = run_cli("-c", str(config), "health", "-o", "json")
        report = json.loads(done.stdout)
        row = report["targets"]["cache"]
        assert done.returncode == 0, done.stderr        # degraded, not unhealthy
        assert report["status"] == "degraded" and row["status"] == "degraded"
        assert row["details"]["degraded"] == "replica whose link to its master is down"
        assert [(a["name"], a["target"], a["severity"]) for a in report["alerts"]] == [
            ("target_degraded", "cache", "warning")]
        assert report["alerts"][0]["message"] == (
            "cache is degraded: replica whose link to its master is down")
        assert hooks.alerts("name", "event") == [("target_degraded", "firing")]

        run_cli("-c", str(config), "health", "-o", "json")  # the same: deduplicated
        assert len(hooks) == 1

        client = redis.Redis.from_url(url)
        client.replicaof("NO", "ONE")                    # a master again: it serves fully
        client.close()
        done = run_cli("-c", str(config), "health", "-o", "json")
        report = json.loads(done.stdout)
        assert (report["status"], report["targets"]["cache"]["status"]) == ("healthy", "up")
        assert report["alerts"] == []
        assert hooks.alerts("name", "event") == [("target_degraded", "firing"),
                                                 ("target_degraded", "resolved")]
