"""MariaDB analyze, optimize, check (integrity) and stats, through the CLI, checked in the
server's own catalog: statistics refreshed, tables rebuilt, space given back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from tests.helpers import run_cli


@pytest.fixture
def db(mysql_db: str) -> Iterator[Any]:
    u = urlsplit(mysql_db)
    conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user="root", password="",
                           database=u.path.lstrip("/"), autocommit=True)
    yield conn
    conn.close()


def q(conn: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        return list(cur.fetchall())


def cfg(write_config: Callable[[str], Path], url: str, tasks: str = "") -> Path:
    return write_config(f"""
        targets:
          shop: {{url: "{url}", lock_timeout: 2s}}
        tasks:
        {tasks or "  {}"}
        """.replace("tasks:\n        {}", "tasks: {}"))


def run(config: Path, *args: str) -> dict[str, Any]:
    proc = run_cli("-c", str(config), "run", *args, "-o", "json")
    assert proc.returncode in (0, 1), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return result


def stats_updated(conn: Any, table: str) -> Any:
    rows = q(conn, "SELECT last_update FROM mysql.innodb_table_stats "
                   "WHERE database_name = DATABASE() AND table_name = %s", table)
    return rows[0][0] if rows else None


def test_analyze_picks_tables_changed_since_their_statistics(
        db: Any, mysql_db: str, write_config: Callable[[str], Path]) -> None:
    for name in ("changed", "quiet"):
        q(db, f"CREATE TABLE {name} (id INT PRIMARY KEY AUTO_INCREMENT, v INT) "
              "ENGINE=InnoDB STATS_PERSISTENT=1 STATS_AUTO_RECALC=0")
        q(db, f"INSERT INTO {name} (v) SELECT seq FROM seq_1_to_500")
    time.sleep(1.1)
    q(db, "ANALYZE TABLE changed")
    q(db, "ANALYZE TABLE quiet")
    time.sleep(1.1)
    q(db, "INSERT INTO changed (v) SELECT seq FROM seq_1_to_3000")
    before = {t: stats_updated(db, t) for t in ("changed", "quiet")}
    config = cfg(write_config, mysql_db)
    preview = run(config, "analyze", "--target", "shop", "--dry-run")
    assert [a["object"] for a in preview["details"]["actions"]] == ["changed"]
    assert stats_updated(db, "changed") == before["changed"]  # a dry run changes nothing
    time.sleep(1.1)
    result = run(config, "analyze", "--target", "shop")
    assert result["status"] == "completed", result
    assert result["metrics"]["tables_processed"] == 1
    assert result["details"]["statements"] == ["ANALYZE TABLE `changed`"]
    assert stats_updated(db, "changed") > before["changed"]
    assert stats_updated(db, "quiet") == before["quiet"]
    rows = q(db, "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = DATABASE() "
                 "AND table_name = 'changed'")[0][0]
    assert rows > 2000  # the statistics see the new rows


def test_optimize_rebuilds_fragmented_tables_only(db: Any, mysql_db: str,
                                                  write_config: Callable[[str], Path]) -> None:
    q(db, "CREATE TABLE holey (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(1000)) "
          "ENGINE=InnoDB")
    q(db, "INSERT INTO holey (pad) SELECT REPEAT('x', 900) FROM seq_1_to_40000")
    q(db, "DELETE FROM holey WHERE id % 10 <> 0")
    q(db, "CREATE TABLE `small one` (id INT PRIMARY KEY)")
    q(db, "INSERT INTO `small one` SELECT seq FROM seq_1_to_100")
    q(db, "ANALYZE TABLE holey, `small one`")
    size = ("SELECT DATA_LENGTH + INDEX_LENGTH + DATA_FREE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s")
    before = q(db, size, "holey")[0][0]
    config = cfg(write_config, mysql_db, """  opt: {kind: optimize, target: shop,
                 min_free_percent: 5, min_free_bytes: 1048576}""")
    preview = run(config, "opt", "--dry-run")
    assert [a["object"] for a in preview["details"]["actions"]] == ["holey"]
    assert q(db, size, "holey")[0][0] == before
    result = run(config, "opt")
    assert result["status"] == "completed", result
    assert result["details"]["statements"] == ["OPTIMIZE TABLE `holey`"]
    after = q(db, size, "holey")[0][0]
    assert after < before / 3, (before, after)
    assert result["metrics"]["bytes_freed"] == before - after
    assert q(db, "SELECT count(*) FROM holey")[0][0] == 4000


def test_optimize_waits_no_longer_than_lock_wait_timeout(
        db: Any, mysql_db: str, mysql_url: str, write_config: Callable[[str], Path]) -> None:
    q(db, "CREATE TABLE busy (id INT PRIMARY KEY)")
    q(db, "INSERT INTO busy SELECT seq FROM seq_1_to_10")
    q(db, "CREATE TABLE other (id INT PRIMARY KEY)")
    holder = pymysql.connect(host="127.0.0.1", user="root", password="",
                             database=urlsplit(mysql_db).path.lstrip("/"))
    try:
        holder.begin()
        q(holder, "LOCK TABLES busy WRITE")  # a metadata lock OPTIMIZE must wait for
        config = cfg(write_config, mysql_db, """  opt: {kind: optimize, target: shop,
                 tables: [busy, other]}""")
        t0 = time.monotonic()
        result = run(config, "opt")
        took = time.monotonic() - t0
    finally:
        holder.close()
    assert result["status"] == "partial_failure", result
    assert "busy" in result["errors"][0] and "lock_wait_timeout" in result["errors"][0]
    assert [a["object"] for a in result["details"]["actions"] if "result" in a] == ["other"]
    assert took < 20


def test_check_tables_and_stats(db: Any, mysql_db: str,
                                write_config: Callable[[str], Path]) -> None:
    q(db, "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20), KEY (v))")
    q(db, "INSERT INTO a SELECT seq, seq FROM seq_1_to_2000")
    q(db, "CREATE TABLE b (id INT PRIMARY KEY) ENGINE=Aria")
    config = cfg(write_config, mysql_db, """  check: {kind: integrity, target: shop}
          st: {kind: stats, target: shop, long_query_seconds: 1}""")
    checked = run(config, "check")
    assert checked["status"] == "completed", checked
    assert checked["details"]["checks"] == ["CHECK TABLE `a` MEDIUM", "CHECK TABLE `b` MEDIUM"]
    assert checked["details"]["tables"]["a"] == ["status: OK"]
    sleeper = pymysql.connect(host="127.0.0.1", user="root", password="")
    thread = threading.Thread(target=lambda: q(sleeper, "SELECT SLEEP(4)"))
    thread.start()
    try:
        time.sleep(1.5)
        stats = run(config, "st")
    finally:
        thread.join()
        sleeper.close()
    assert stats["status"] == "completed", stats
    m = stats["metrics"]
    assert m["tables"] == 2 and m["size_bytes"] > 0
    assert m["connections"] >= 2 and 0 < m["connection_percent"] < 100
    assert m["long_queries"] >= 1 and m["query_seconds"] >= 1
    slow = [r for r in stats["details"]["long_queries"] if "SLEEP(4)" in (r["query"] or "")]
    assert slow and slow[0]["seconds"] >= 1
    assert stats["details"]["top_tables"][0]["table"] == "a"


@pytest.mark.parametrize("kind", ["analyze", "optimize", "integrity", "cleanup"])
def test_a_url_without_a_database_fails_instead_of_finding_nothing_to_do(
        write_config: Callable[[str], Path], kind: str) -> None:
    """Without a database in the URL, DATABASE() is NULL: every table listing came back empty,
    and the runs said 'statistics are fresh' or 'no problems found (nothing to check)'."""
    params = ", table: orders, date_column: created_at, retention: 30d" \
        if kind == "cleanup" else ""
    config = cfg(write_config, "mysql://root@127.0.0.1:3306",
                 f"  t: {{kind: {kind}, target: shop{params}}}")
    proc = run_cli("-c", str(config), "run", "t", "--dry-run", "-o", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["status"] == "failed"
    assert result["message"].startswith("the target URL names no database "
                                        "(mysql://user:***@host:3306/db)"), result["message"]
