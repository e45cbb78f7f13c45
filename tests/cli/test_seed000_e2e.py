"""Seed 000 end to end: PostgreSQL really stopped (a private cluster this test starts and
stops), Redis up, the DuckDB file held by an ingest process. `wellkept run --all` completes
every task it can, reports a partial failure with per-service availability, and crashes
nowhere; once PostgreSQL is back and the file free, the next run completes with no manual step.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import redis

from tests.helpers import run_cli
from tests.servers import duckdb_holder


def test_run_all_degrades_then_recovers(private_pg: Any, redis_url: str, tmp_path: Path,
                                        write_config: Callable[[str], Path]) -> None:
    with psycopg.connect(private_pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz)")
        conn.execute("INSERT INTO events (created_at) SELECT now() - interval '100 days' "
                     "FROM generate_series(1, 500)")
    duck = tmp_path / "analytics.duckdb"
    c = duckdb.connect(str(duck))
    c.execute("CREATE TABLE prices AS SELECT range AS id FROM range(1000)")
    c.close()
    prefix = f"wktest:{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(redis_url)
    client.mset({f"{prefix}:cache:{i}": i for i in range(50)})
    config = write_config(f"""
        targets:
          app: {{url: "{private_pg.url}", timeout: 2s}}
          cache: {{url: "{redis_url}"}}
          analytics: {{url: "duckdb:///{duck}"}}
        tasks:
          cleanup-events: {{kind: cleanup, target: app, table: events,
                            date_column: created_at, retention: 30d}}
          optimize-app: {{kind: vacuum, target: app}}
          app-stats: {{kind: stats, target: app}}
          clear-cache: {{kind: cache_cleanup, target: cache, pattern: "{prefix}:cache:*"}}
          cache-stats: {{kind: stats, target: cache}}
          duck-checkpoint: {{kind: checkpoint, target: analytics, force: true}}
          duck-stats: {{kind: stats, target: analytics}}
          health-check: {{kind: health}}
        """)
    try:
        private_pg.stop()
        with duckdb_holder(duck) as holder:
            proc = run_cli("-c", str(config), "run", "--all", "-o", "json")
    finally:
        private_pg.start()
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    batch = json.loads(proc.stdout)
    status = {r["task"]: r["status"] for r in batch["results"]}
    assert status == {"cleanup-events": "failed", "optimize-app": "failed",
                      "app-stats": "failed", "clear-cache": "completed",
                      "cache-stats": "completed", "duck-checkpoint": "skipped",
                      "duck-stats": "skipped", "health-check": "completed"}
    summary = batch["summary"]
    assert summary["status"] == "partial_failure"
    assert (summary["completed"], summary["failed"], summary["skipped"]) == (3, 3, 2)
    targets = summary["targets"]
    assert targets["app"]["available"] is False and targets["app"]["status"] == "down"
    assert "refused" in targets["app"]["errors"][0].lower() or \
        "no such file" in targets["app"]["errors"][0].lower()
    assert targets["cache"] == {"available": True, "status": "up", "errors": []}
    assert targets["analytics"]["available"] is True
    assert targets["analytics"]["status"] == "locked"
    assert f"PID {holder.pid}" in targets["analytics"]["errors"][0]
    assert len(summary["errors"]) == 3 and all(e.split(" on ")[0] in status
                                               and e.split(" on ")[1].startswith("app:")
                                               for e in summary["errors"])
    health = next(r for r in batch["results"] if r["task"] == "health-check")["details"]
    assert health["targets"]["app"]["status"] == "down"
    assert health["targets"]["cache"]["status"] == "up"
    assert health["targets"]["analytics"]["status"] == "locked"
    assert health["status"] == "unhealthy"
    assert sum(1 for _ in client.scan_iter(match=f"{prefix}:*")) == 0  # Redis work was done
    # the service returns and the file is free: the next run completes, nothing done by hand
    client.mset({f"{prefix}:cache:{i}": i for i in range(5)})
    again = run_cli("-c", str(config), "run", "--all", "-o", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    batch = json.loads(again.stdout)
    assert batch["summary"]["status"] == "completed"
    assert {r["status"] for r in batch["results"]} == {"completed"}
    assert {t: v["status"] for t, v in batch["summary"]["targets"].items()} == dict.fromkeys(
        ["app", "cache", "analytics", "host"], "up")
    with psycopg.connect(private_pg.url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    client.close()
