"""DuckDB checkpoint, analyze and stats through the CLI, and every task against a file that a
second process holds read-write (skipped, naming the holder's PID; never failed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.helpers import run_cli
from tests.servers import duckdb_holder

# writes rows and dies without closing: DuckDB leaves them in the write-ahead log
_CRASHING_WRITER = """
import duckdb, os, sys
c = duckdb.connect(sys.argv[1])
c.execute("SET checkpoint_threshold = '1GB'")
c.execute("CREATE TABLE ticks AS SELECT range AS id, range * 1.5 AS price FROM range(200000)")
c.execute("INSERT INTO ticks SELECT range + 200000, 0 FROM range(50000)")
os._exit(0)
"""


@pytest.fixture
def walled(tmp_path: Path) -> Path:
    path = tmp_path / "ticks.duckdb"
    subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(path)], check=True, timeout=120)
    assert Path(f"{path}.wal").stat().st_size > 0
    return path


def config_for(write_config: Callable[[str], Path], path: Path) -> Path:
    return write_config(f"""
        targets:
          duck: {{url: "duckdb:///{path}"}}
        tasks:
          duck-backup: {{kind: backup, target: duck, destination: backups/}}
        """)


def run(config: Path, *args: str) -> dict[str, Any]:
    proc = run_cli("-c", str(config), "run", *args, "-o", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_checkpoint_writes_the_log_back(walled: Path, write_config: Callable[[str], Path]) -> None:
    config = config_for(write_config, walled)
    wal = Path(f"{walled}.wal")
    size = wal.stat().st_size
    preview = run(config, "checkpoint", "--target", "duck", "--dry-run")["results"][0]
    assert preview["details"]["actions"][0]["statement"] == "FORCE CHECKPOINT"  # DuckDB >= 1.4
    assert wal.stat().st_size == size
    result = run(config, "checkpoint", "--target", "duck")["results"][0]
    assert result["status"] == "completed", result
    assert result["metrics"]["wal_bytes_before"] == size
    assert result["metrics"]["wal_bytes_after"] == 0
    assert not wal.exists() or wal.stat().st_size == 0
    conn = duckdb.connect(str(walled), read_only=True)
    assert conn.execute("SELECT count(*) FROM ticks").fetchone() == (250000,)
    conn.close()
    again = run(config, "checkpoint", "--target", "duck")["results"][0]
    assert again["message"].startswith("nothing to checkpoint")


def test_checkpoint_statement_follows_the_version() -> None:
    from wellkept.connectors.duckdb_maintenance import checkpoint_statement

    assert checkpoint_statement("1.3.2") == "CHECKPOINT"
    assert checkpoint_statement("1.4.0") == "FORCE CHECKPOINT"
    assert checkpoint_statement("v2.0.1") == "FORCE CHECKPOINT"


def test_analyze_and_stats(walled: Path, write_config: Callable[[str], Path]) -> None:
    config = config_for(write_config, walled)
    analyzed = run(config, "analyze", "--target", "duck")["results"][0]
    assert analyzed["status"] == "completed", analyzed
    assert analyzed["details"]["statements"] == ['VACUUM ANALYZE "main"."ticks"']
    assert analyzed["metrics"]["tables_processed"] == 1
    stats = run(config, "stats", "--target", "duck")["results"][0]
    assert stats["status"] == "completed"
    assert stats["metrics"]["tables"] == 1 and stats["metrics"]["size_bytes"] > 0
    top = stats["details"]["top_tables"][0]
    assert (top["table"], top["estimated_rows"]) == ("ticks", 250000)


def test_every_task_handles_a_file_held_by_another_process(
        walled: Path, write_config: Callable[[str], Path]) -> None:
    config = config_for(write_config, walled)
    with duckdb_holder(walled) as holder:
        proc = run_cli("-c", str(config), "run", "checkpoint", "analyze", "stats",
                       "--target", "duck", "-o", "json")
        backup = run(config, "duck-backup")
    batch = json.loads(proc.stdout)
    results = batch["results"] + backup["results"]
    assert [r["status"] for r in results] == ["skipped"] * 4, results
    for r in results:
        assert f"PID {holder.pid}" in r["message"], r["message"]
        assert r["details"]["availability"]["holder_pid"] == holder.pid
    assert proc.returncode == 0  # in use is not a failure
    assert batch["summary"]["targets"]["duck"] == {
        "available": True, "status": "locked", "errors": [results[0]["details"][
            "availability"]["error"]]}
    assert "ERROR" not in proc.stderr and "Traceback" not in proc.stderr
