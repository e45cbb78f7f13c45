"""The six task kinds driven through the engine against real SQLite files; every test then looks
at the database file itself."""

from __future__ import annotations

import hashlib
import math
import random
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import make_app_db, sql, tmpfs, ts
from wellkept.config import load_config
from wellkept.connectors.sqlite_catalog import quote
from wellkept.engine import Engine
from wellkept.records import RunRecord

NOW = datetime.now(UTC)


# --- builders -----------------------------------------------------------------------------------


def engine_for(tmp_path: Path, tasks: dict[str, dict[str, Any]], db: str = "app.sqlite3",
               lock_timeout: str = "1s") -> Engine:
    """Write a config (task names get target `app`) and load it as the CLI would."""
    cfg = {"targets": {"app": {"url": f"sqlite:///{db}", "lock_timeout": lock_timeout}},
           "tasks": {n: {"target": "app", **body} for n, body in tasks.items()}}
    path = tmp_path / "wellkept.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Engine(load_config(path))


def run(engine: Engine, name: str, *, dry_run: bool = False,
        target: str | None = None) -> RunRecord:
    batch = engine.run(engine.resolve([name], target=target), dry_run=dry_run)
    assert len(batch.results) == 1
    return batch.results[0]


def run_task(tmp_path: Path, body: dict[str, Any], *, dry_run: bool = False,
             db: str = "app.sqlite3") -> RunRecord:
    return run(engine_for(tmp_path, {"t": body}, db=db), "t", dry_run=dry_run)


def one(path: Path, statement: str, *args: Any) -> Any:
    return sql(path, statement, *args)[0][0]


def script(path: Path, text: str, rows: dict[str, list[tuple[Any, ...]]] | None = None) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(text)
    conn.execute("BEGIN")
    for table, values in (rows or {}).items():
        marks = ", ".join("?" * len(values[0]))
        conn.executemany(f"INSERT INTO {quote(table)} VALUES ({marks})", values)
    conn.execute("COMMIT")
    conn.close()
    return path


def tables(path: Path) -> list[str]:
    return [r[0] for r in sql(path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                    "ORDER BY name")]


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def assert_clean_failure(r: RunRecord, *needles: str) -> None:
    assert r.status == "failed", (r.status, r.message)
    assert r.errors and not any("Traceback" in e for e in r.errors), r.errors
    assert "unexpected error" not in r.message
    for needle in needles:
        assert needle in r.message, (needle, r.message)


@contextmanager
def held(db: Path, begin: str) -> Iterator[None]:
    """Another process holds a lock on the file (`begin`, plus a pending write if IMMEDIATE)."""
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute(sys.argv[2]); c.execute('UPDATE events SET kind = kind WHERE id = 1'); "
            "print('held', flush=True); sys.stdin.read(); c.execute('ROLLBACK')")
    with subprocess.Popen([sys.executable, "-c", code, str(db), begin], text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "held"
            yield
        finally:
            proc.stdin.close()  # the holder rolls back and exits
            proc.wait(timeout=30)


# --- vacuum -------------------------------------------------------------------------------------


def test_vacuum_below_min_free_percent_does_nothing_unless_forced(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    sql(db, "DELETE FROM events WHERE id <= 60")
    free = one(db, "PRAGMA freelist_count")
    assert 0 < free < 0.1 * one(db, "PRAGMA page_count")
    before = fingerprint(db)
    r = run_task(tmp_path, {"kind": "vacuum", "min_free_percent": 10})
    assert r.status == "completed" and "nothing to vacuum" in r.message
    assert r.metrics["bytes_freed"] == 0 and r.metrics["tables_processed"] == 0
    assert fingerprint(db) == before and one(db, "PRAGMA freelist_count") == free
    before = db.stat().st_size
    r = run_task(tmp_path, {"kind": "vacuum", "force": True, "min_free_percent": 50})
    assert r.status == "completed", r.message
    assert r.details["actions"][0]["reason"] == "forced"
    assert one(db, "PRAGMA freelist_count") == 0
    assert db.stat().st_size < before
    assert r.metrics["bytes_freed"] == before - db.stat().st_size
    assert "tables_processed" not in r.metrics  # a whole-file VACUUM: no tables to count, not 0


def test_vacuum_dry_run_changes_nothing_then_vacuum_frees_the_pages(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    sql(db, "DELETE FROM events WHERE kind = 'old'")
    free, page_size = one(db, "PRAGMA freelist_count"), one(db, "PRAGMA page_size")
    before = fingerprint(db)
    time.sleep(0.01)
    engine = engine_for(tmp_path, {"t": {"kind": "vacuum"}})
    r = run(engine, "t", dry_run=True)
    assert r.status == "completed" and r.dry_run and "VACUUM" in r.message
    [action] = r.details["actions"]
    assert action["statement"] == "VACUUM"
    assert action["evidence"]["free_pages"] == free
    assert action["evidence"]["free_bytes"] == free * page_size
    assert r.metrics["bytes_freed"] == 0
    assert fingerprint(db) == before
    assert sorted(p.name for p in tmp_path.glob("app.sqlite3*")) == ["app.sqlite3"]
    size = db.stat().st_size
    r = run(engine, "t")
    assert r.status == "completed", r.message
    assert db.stat().st_size < size / 2
    assert one(db, "PRAGMA freelist_count") == 0
    assert r.metrics["bytes_freed"] == size - db.stat().st_size
    assert (r.metrics["size_before"], r.metrics["size_after"]) == (size, db.stat().st_size)
    assert one(db, "SELECT count(*) FROM events") == 1000
    assert one(db, "PRAGMA integrity_check") == "ok"


def test_vacuum_shrinks_a_wal_database_after_the_checkpoint(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    wal = Path(f"{db}-wal")
    other = sqlite3.connect(db, isolation_level=None)  # keeps the WAL alive, never checkpoints
    try:
        assert other.execute("PRAGMA journal_mode = wal").fetchone()[0] == "wal"
        other.execute("PRAGMA wal_autocheckpoint = 0")
        other.execute("DELETE FROM events WHERE kind = 'old'")
        main_before, wal_before = db.stat().st_size, wal.stat().st_size
        assert wal_before > 0
        r = run_task(tmp_path, {"kind": "vacuum"})
        assert r.status == "completed", r.message
        assert db.stat().st_size < main_before / 2
        assert wal.stat().st_size == 0
        assert r.metrics["bytes_freed"] == main_before + wal_before - db.stat().st_size
        assert other.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 1000
    finally:
        other.close()


# --- analyze ------------------------------------------------------------------------------------


def stat1(db: Path) -> list[tuple[Any, ...]]:
    return sql(db, "SELECT rowid, tbl, idx, stat FROM sqlite_stat1 ORDER BY rowid")


def analyze_db(path: Path) -> Path:
    return script(path, """
        CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX a_v ON a (v);
        CREATE TABLE b (x INTEGER, y TEXT);
        CREATE TABLE c (x INTEGER);
    """, {"a": [(i, f"v{i % 50}") for i in range(1, 1001)],
          "b": [(i, "y") for i in range(500)]})


def test_analyze_dry_run_then_never_analyzed_tables_get_statistics(tmp_path: Path) -> None:
    db = analyze_db(tmp_path / "app.sqlite3")
    before = fingerprint(db)
    engine = engine_for(tmp_path, {"t": {"kind": "analyze"}})
    r = run(engine, "t", dry_run=True)
    assert r.status == "completed" and r.dry_run
    assert [a["statement"] for a in r.details["actions"]] == \
        ['ANALYZE "a"', 'ANALYZE "b"', "PRAGMA optimize"]
    assert 'ANALYZE "a"' in r.message and r.metrics["tables_processed"] == 0
    assert fingerprint(db) == before
    assert "sqlite_stat1" not in tables(db)
    r = run(engine, "t")
    assert r.status == "completed", r.message
    assert r.metrics["tables_processed"] == 2
    rows = {(t, i): s for _, t, i, s in stat1(db)}
    assert set(rows) == {("a", "a_v"), ("b", None)}  # the empty table c is left out
    assert rows[("b", None)] == "500"


def test_analyze_redoes_only_tables_whose_row_count_moved(tmp_path: Path) -> None:
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE moving (x); CREATE TABLE steady (x);",
                {"moving": [(i,) for i in range(1000)], "steady": [(i,) for i in range(1000)]})
    engine = engine_for(tmp_path, {"t": {"kind": "analyze"}})
    assert run(engine, "t").metrics["tables_processed"] == 2
    steady_before = [r for r in stat1(db) if r[1] == "steady"]
    script(db, "", {"moving": [(i,) for i in range(210)],  # +21%: stale
                    "steady": [(i,) for i in range(190)]})  # +19%: still fresh
    r = run(engine, "t")
    assert r.status == "completed", r.message
    assert r.metrics["tables_processed"] == 1
    assert [a["object"] for a in r.details["actions"]] == ["moving", "main"]
    assert "1000 -> 1210" in r.details["actions"][0]["reason"]
    assert [s for _, t, _, s in stat1(db) if t == "moving"] == ["1210"]
    assert [r for r in stat1(db) if r[1] == "steady"] == steady_before


def test_analyze_leaves_fresh_indexed_tables_alone(tmp_path: Path) -> None:
    """With analysis_limit (default 400) sqlite_stat1 holds an *estimate* of the row count, so
    comparing it with count(*) must not make an unchanged table look stale on every run."""
    db = make_app_db(tmp_path / "app.sqlite3")
    engine = engine_for(tmp_path, {"t": {"kind": "analyze"}})
    assert run(engine, "t").metrics["tables_processed"] == 1
    before = fingerprint(db)
    r = run(engine, "t")  # nothing changed in between
    assert fingerprint(db) == before, "ANALYZE rewrote the file although no row changed: " \
        + r.details["actions"][0]["reason"]
    assert r.metrics["tables_processed"] == 0


# --- integrity ----------------------------------------------------------------------------------


def test_integrity_of_a_healthy_file_completes_and_writes_nothing(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=200, fresh=100)
    before = fingerprint(db)
    r = run_task(tmp_path, {"kind": "integrity"})
    assert r.status == "completed", r.message
    assert r.metrics["problems"] == 0
    assert r.details["checks"] == ["PRAGMA integrity_check(100)", "PRAGMA foreign_key_check"]
    assert fingerprint(db) == before
    assert one(db, "PRAGMA integrity_check") == "ok"


def sqlite_says_ok(db: Path) -> bool:
    try:
        return sql(db, "PRAGMA integrity_check") == [("ok",)]
    except sqlite3.DatabaseError:
        return False


def test_integrity_of_a_corrupted_file_fails_naming_the_problem(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    page_size = one(db, "PRAGMA page_size")
    pages = [r[0] for r in sql(db, "SELECT pageno FROM dbstat WHERE name = 'events_created_at' "
                                   "AND pagetype = 'leaf' ORDER BY pageno")]
    assert len(pages) > 4
    garbage = random.Random(20261122)
    with db.open("r+b") as fh:
        for page in pages[len(pages) // 2: len(pages) // 2 + 2]:
            fh.seek((page - 1) * page_size + page_size // 4)
            fh.write(bytes(garbage.randrange(256) for _ in range(page_size // 2)))
    assert not sqlite_says_ok(db)  # sqlite3 itself agrees the file is damaged
    before = fingerprint(db)
    r = run_task(tmp_path, {"kind": "integrity"})
    assert_clean_failure(r)
    assert re.search(r"integrity problem: .*page|is damaged: .*malformed", r.message, re.S)
    assert fingerprint(db) == before


def test_integrity_counts_each_problem_of_a_damaged_page_and_names_one(tmp_path: Path) -> None:
    """SQLite reports the problems of one damaged b-tree as a single row of newline-separated
    lines under a '*** in database main ***' heading; each line is a problem of its own."""
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE p (id INTEGER PRIMARY KEY);",
                {"p": [(i,) for i in range(1, 3000)]})
    page_size = one(db, "PRAGMA page_size")
    page = one(db, "SELECT pageno FROM dbstat WHERE name = 'p' AND pagetype = 'leaf' "
                   "ORDER BY ncell DESC LIMIT 1")
    with db.open("r+b") as fh:  # cell pointers past the end of the page
        fh.seek((page - 1) * page_size + 100)
        fh.write(b"\xff" * 2000)
    rows = [r[0] for r in sql(db, "PRAGMA integrity_check(100)")]
    assert len(rows) < 100 and "\n" in rows[0]  # sqlite3 gives one multi-line row
    r = run_task(tmp_path, {"kind": "integrity", "foreign_keys": False})
    assert_clean_failure(r, "integrity problem: On tree page", "(and 99 more)")
    assert "\n" not in r.message and "*** in database" not in r.message
    assert r.metrics["problems"] == 100 and len(r.errors) == 100
    assert all("\n" not in e for e in r.errors)


def test_integrity_reports_a_foreign_key_violation(tmp_path: Path) -> None:
    db = script(tmp_path / "app.sqlite3", """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id REFERENCES parent (id));
    """, {"parent": [(1,)], "child": [(1, 1), (7, 99)]})
    assert sql(db, "PRAGMA foreign_key_check") == [("child", 7, "parent", 0)]
    r = run_task(tmp_path, {"kind": "integrity"})
    assert_clean_failure(r, "foreign key: row 7 of child points to a missing row of parent")
    off = run_task(tmp_path, {"kind": "integrity", "foreign_keys": False})
    assert off.status == "completed" and off.details["checks"] == ["PRAGMA integrity_check(100)"]
    assert one(db, "SELECT count(*) FROM child") == 2


def test_integrity_quick_mode_uses_quick_check(tmp_path: Path) -> None:
    """An index whose entries do not match its table: only the full check reads index contents."""
    db = script(tmp_path / "app.sqlite3", """
        CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
        CREATE INDEX t_i ON t (a);
    """, {"t": [(i, i, -i) for i in range(1, 201)]})
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX t_i ON t (b)' WHERE name = 't_i'")
    conn.close()
    assert one(db, "PRAGMA quick_check") == "ok" and one(db, "PRAGMA integrity_check") != "ok"
    quick = run_task(tmp_path, {"kind": "integrity", "mode": "quick", "max_errors": 5})
    assert quick.status == "completed", quick.message
    assert quick.details["checks"][0] == "PRAGMA quick_check(5)"
    full = run_task(tmp_path, {"kind": "integrity", "max_errors": 5})
    assert_clean_failure(full, "missing from index t_i", "(and 4 more)")
    assert full.metrics["problems"] == 5


# --- stats --------------------------------------------------------------------------------------


def stats_db(path: Path) -> Path:
    db = script(path, """
        CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT); CREATE INDEX big_body ON big (body);
        CREATE TABLE mid (id INTEGER PRIMARY KEY, body TEXT UNIQUE);
        CREATE TABLE small (x); CREATE TABLE tiny (x);
    """, {"big": [(i, "b" * 300 + str(i)) for i in range(2000)],
          "mid": [(i, "m" * 100 + str(i)) for i in range(800)],
          "small": [(i,) for i in range(300)], "tiny": [(1,)]})
    sql(db, "DELETE FROM big WHERE id % 2 = 0")
    return db


@pytest.mark.parametrize("top", [10, 2])
def test_stats_metrics_match_sqlites_own_pragmas(tmp_path: Path, top: int) -> None:
    db = stats_db(tmp_path / "app.sqlite3")
    before = fingerprint(db)
    r = run_task(tmp_path, {"kind": "stats", "top": top})
    assert r.status == "completed", r.message
    free, size = one(db, "PRAGMA freelist_count"), one(db, "PRAGMA page_size")
    assert free > 0
    assert r.metrics["size_bytes"] == db.stat().st_size == size * one(db, "PRAGMA page_count")
    assert r.metrics["free_bytes"] == free * size
    assert r.metrics["tables"] == len(tables(db)) == 4
    assert r.metrics["indexes"] == one(db, "SELECT count(*) FROM sqlite_master "
                                           "WHERE type = 'index'") == 2
    assert r.details["free_pages"] == free and r.details["journal_mode"] == "delete"
    sizes = dict(sql(db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    top_tables = r.details["top_tables"]  # ordered by size, bounded by `top`
    assert [t["name"] for t in top_tables] == ["big", "mid", "small", "tiny"][:top]
    assert [t["bytes"] for t in top_tables] == [sizes[t["name"]] for t in top_tables]
    assert [t["bytes"] for t in top_tables] == sorted(sizes[t] for t in tables(db))[::-1][:top]
    assert [t["rows"] for t in top_tables] == [1000, 800, 300, 1][:top]
    assert [i["name"] for i in r.details["top_indexes"]] == ["big_body",
                                                             "sqlite_autoindex_mid_1"][:top]
    assert fingerprint(db) == before


# --- cleanup ------------------------------------------------------------------------------------


def cleanup(table: str = "events", column: str = "created_at", **extra: Any) -> dict[str, Any]:
    """A cleanup rule with fixed-size batches (target_batch_seconds 0), so counts are exact."""
    return {"kind": "cleanup", "table": table, "date_column": column, "retention": "30d",
            "target_batch_seconds": 0, **extra}


@pytest.mark.parametrize(("batch_size", "batches"), [(700, 5), (1000, 3), (2999, 2), (5000, 1)])
def test_cleanup_deletes_exactly_the_old_rows(tmp_path: Path, batch_size: int,
                                              batches: int) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    fresh = sql(db, "SELECT * FROM events WHERE kind = 'fresh' ORDER BY id")
    assert batches == math.ceil(3000 / batch_size)
    r = run_task(tmp_path, cleanup(batch_size=batch_size))
    assert r.status == "completed", r.message
    assert r.metrics == {"rows_matched": 3000, "rows_deleted": 3000, "rows_archived": 0,
                         "batches": batches}
    assert r.details["expected_batches"] == batches
    assert one(db, "SELECT count(*) FROM events WHERE kind = 'old'") == 0
    assert sql(db, "SELECT * FROM events ORDER BY id") == fresh


def test_cleanup_dry_run_counts_exactly_and_deletes_nothing(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    oldest, newest = sql(db, "SELECT min(created_at), max(created_at) FROM events "
                             "WHERE kind = 'old'")[0]
    before = fingerprint(db)
    r = run_task(tmp_path, cleanup(batch_size=400), dry_run=True)
    assert r.status == "completed" and r.dry_run
    assert r.metrics == {"rows_matched": 3000, "rows_deleted": 0, "rows_archived": 0,
                         "batches": 0}
    assert (r.details["oldest_match"], r.details["newest_match"]) == (oldest, newest)
    assert r.details["expected_batches"] == 8 and "in 8 batches" in r.message
    assert r.details["cutoff"] < ts(NOW - timedelta(days=29))
    assert any(s.startswith("DELETE FROM \"events\"") for s in r.details["statements"])
    assert fingerprint(db) == before


def test_cleanup_by_soft_delete_column_never_deletes_nulls(tmp_path: Path) -> None:
    db = script(tmp_path / "app.sqlite3",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, deleted_at TEXT);",
                {"users": [(i, f"u{i}", None if i % 3 == 0 else ts(
                    NOW - timedelta(days=60 if i % 3 == 1 else 5))) for i in range(1, 301)]})
    r = run_task(tmp_path, {"kind": "cleanup", "table": "users", "soft_delete_column":
                            "deleted_at", "retention": "30d", "batch_size": 30,
                            "target_batch_seconds": 0})
    assert r.status == "completed", r.message
    assert r.metrics["rows_matched"] == r.metrics["rows_deleted"] == 100
    assert r.metrics["batches"] == 4
    left = sql(db, "SELECT id FROM users ORDER BY id")
    assert [i for (i,) in left] == [i for i in range(1, 301) if i % 3 != 1]
    assert one(db, "SELECT count(*) FROM users WHERE deleted_at IS NULL") == 100


@pytest.mark.parametrize("scale", [1, 1000])
def test_cleanup_on_epoch_integer_columns(tmp_path: Path, scale: int) -> None:
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE hits (id INTEGER PRIMARY KEY, at INTEGER);",
                {"hits": [(i, int((NOW - timedelta(days=40 if i <= 70 else 20, minutes=i))
                                  .timestamp() * scale)) for i in range(1, 101)]})
    r = run_task(tmp_path, cleanup("hits", "at", batch_size=25))
    assert r.status == "completed", r.message
    assert (r.metrics["rows_deleted"], r.metrics["batches"]) == (70, 3)
    assert [i for (i,) in sql(db, "SELECT id FROM hits ORDER BY id")] == list(range(71, 101))


def test_cleanup_without_rowid_table_with_text_key(tmp_path: Path) -> None:
    rows = [(uuid.uuid4().hex, ts(NOW - timedelta(days=45 if i % 2 else 3, seconds=i)))
            for i in range(500)]
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE sessions (token TEXT PRIMARY KEY, "
                "expires_at TEXT NOT NULL) WITHOUT ROWID;", {"sessions": rows})
    r = run_task(tmp_path, cleanup("sessions", "expires_at", batch_size=60))
    assert r.status == "completed", r.message
    assert r.details["key"] == "token"
    assert r.metrics["rows_matched"] == r.metrics["rows_deleted"] == 250
    assert r.metrics["batches"] == 5
    assert sorted(sql(db, "SELECT * FROM sessions")) == sorted(x for i, x in enumerate(rows)
                                                               if i % 2 == 0)


def test_cleanup_table_with_a_column_named_rowid(tmp_path: Path) -> None:
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE odd (rowid TEXT, created_at TEXT);",
                {"odd": [("same", ts(NOW - timedelta(days=90 if i < 40 else 1))) for i in
                         range(100)]})
    r = run_task(tmp_path, cleanup("odd", batch_size=15))
    assert r.status == "completed", r.message
    assert (r.metrics["rows_deleted"], r.metrics["batches"]) == (40, 3)
    assert one(db, "SELECT count(*) FROM odd") == 60
    assert one(db, "SELECT min(_rowid_) FROM odd") == 41


def test_cleanup_refuses_a_table_without_usable_key(tmp_path: Path) -> None:
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE pairs (a TEXT, b TEXT, at TEXT, "
                "PRIMARY KEY (a, b)) WITHOUT ROWID;",
                {"pairs": [(str(i), "x", ts(NOW - timedelta(days=90))) for i in range(50)]})
    for dry_run in (True, False):
        r = run_task(tmp_path, cleanup("pairs", "at"), dry_run=dry_run)
        assert_clean_failure(r, "'pairs' has no usable key", "refusing to clean it")
    assert one(db, "SELECT count(*) FROM pairs") == 50


HOSTILE = [
    ('x"; DROP TABLE events; --', "created_at", "tables: events, users"),
    ("events; DROP TABLE events", "created_at", "tables: events, users"),
    ("evnts", "created_at", "does not exist; tables: events, users"),
    ("events", 'created_at" OR 1=1 --', "columns: id, kind, body, created_at"),
    ("events", "created", "has no column 'created'; columns: id, kind, body, created_at"),
]


@pytest.mark.parametrize(("table", "column", "needle"), HOSTILE)
def test_cleanup_refuses_unknown_or_hostile_names(tmp_path: Path, table: str, column: str,
                                                  needle: str) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=50, fresh=20)
    script(db, "CREATE TABLE users (id INTEGER PRIMARY KEY);", {"users": [(1,), (2,)]})
    before = fingerprint(db)
    r = run_task(tmp_path, cleanup(table, column))
    assert_clean_failure(r, needle)
    assert tables(db) == ["events", "users"]
    assert fingerprint(db) == before


def test_cleanup_of_a_table_with_quotes_semicolons_and_spaces_in_its_names(
        tmp_path: Path) -> None:
    table, column = 'we"ird; table', 'when"; --'
    db = make_app_db(tmp_path / "app.sqlite3", old=30, fresh=10)
    script(db, f"CREATE TABLE {quote(table)} (id INTEGER PRIMARY KEY, {quote(column)} TEXT);",
           {table: [(i, ts(NOW - timedelta(days=99 if i <= 25 else 2))) for i in range(1, 41)]})
    r = run_task(tmp_path, cleanup(table, column, batch_size=10))
    assert r.status == "completed", r.message
    assert (r.metrics["rows_matched"], r.metrics["rows_deleted"], r.metrics["batches"]) == \
        (25, 25, 3)
    assert tables(db) == ["events", table]
    assert [i for (i,) in sql(db, f"SELECT id FROM {quote(table)}")] == list(range(26, 41))
    assert one(db, "SELECT count(*) FROM events") == 40


# --- busy database ------------------------------------------------------------------------------


@pytest.mark.parametrize("begin", ["BEGIN EXCLUSIVE", "BEGIN IMMEDIATE"])
@pytest.mark.parametrize("kind", ["cleanup", "vacuum"])
def test_busy_database_fails_cleanly_within_the_lock_timeout(tmp_path: Path, begin: str,
                                                            kind: str) -> None:
    db = make_app_db(tmp_path / "app.sqlite3")
    if kind == "vacuum":
        sql(db, "DELETE FROM events WHERE id > 3500")
    before = one(db, "SELECT count(*) FROM events"), db.stat().st_size
    engine = engine_for(tmp_path, {"t": cleanup() if kind == "cleanup" else {"kind": "vacuum"}})
    with held(db, begin):
        t0 = time.monotonic()
        r = run(engine, "t")
        elapsed = time.monotonic() - t0
    assert_clean_failure(r, "busy", "waited 1s")
    assert 0.9 < elapsed < 8
    assert (one(db, "SELECT count(*) FROM events"), db.stat().st_size) == before
    assert one(db, "SELECT count(*) FROM events WHERE kind = 'old'") == 3000


# --- backup -------------------------------------------------------------------------------------


def test_a_task_that_does_not_apply_is_skipped_with_the_reason(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=10, fresh=10)
    sql(db, "DELETE FROM events")
    before = fingerprint(db)
    engine = engine_for(tmp_path, {})
    r = run(engine, "vacuum", target="host")
    assert r.status == "skipped" and r.target == "host"
    assert r.message == "vacuum does not apply to host targets (they are not Vacuumable)"
    assert fingerprint(db) == before


@pytest.mark.parametrize("body", [
    {"kind": "vacuum"}, {"kind": "analyze"}, {"kind": "integrity"}, {"kind": "stats"},
    {"kind": "backup", "destination": "bk"}, cleanup()])
def test_missing_database_file_fails_naming_the_path(tmp_path: Path,
                                                     body: dict[str, Any]) -> None:
    r = run_task(tmp_path, body, db="data/missing.sqlite3")
    missing = tmp_path / "data" / "missing.sqlite3"
    assert_clean_failure(r, str(missing.resolve()))
    assert not missing.parent.exists() and not (tmp_path / "bk").exists()


def test_batch_size_adapts_toward_the_target_duration(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=3000, fresh=10)
    r = run_task(tmp_path, {**cleanup(batch_size=10), "target_batch_seconds": 0.5})
    assert r.status == "completed", r.message
    assert r.metrics["rows_deleted"] == 3000
    sizes = r.details["batch_sizes"]
    assert sizes["first"] == 10 and sizes["max"] > 10  # fast batches grew
    assert r.metrics["batches"] < 300
    assert one(db, "SELECT count(*) FROM events") == 10


def test_next_batch_size_is_bounded() -> None:
    from wellkept.tasks.cleanup import MIN_BATCH, next_batch_size

    assert next_batch_size(1000, 0.2, 0.5) == 2000           # at most doubles
    assert next_batch_size(1000, 0.05, 0.5) == 4000          # far under: at most quadruples
    assert next_batch_size(1000, 0.124, 0.5) == 4000
    assert next_batch_size(1000, 0.125, 0.5) == 2000
    assert next_batch_size(1000, 5.0, 0.5) == 500            # at most halves
    assert next_batch_size(1000, 0.4, 0.5) == 1250           # proportional in between
    assert next_batch_size(1000, 0.5, 0) == 1000             # 0: fixed size
    assert next_batch_size(12, 10.0, 0.5) == MIN_BATCH


def test_archive_mode_copies_exactly_the_deleted_rows(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=1200, fresh=100)
    before = {r[0]: r for r in sql(db, "SELECT * FROM events WHERE kind = 'old' AND id > 10")}
    rule = {**cleanup(batch_size=250), "mode": "archive", "archive_to": 'arc"hive; x',
            "where": [{"column": "id", "op": ">", "value": 10}]}
    dry = run_task(tmp_path, rule, dry_run=True)
    assert dry.metrics["rows_matched"] == len(before) and "would archive" in dry.message
    assert 'arc"hive; x' not in tables(db)  # a dry run creates nothing
    r = run_task(tmp_path, rule)
    assert r.status == "completed", r.message
    assert r.metrics["rows_deleted"] == r.metrics["rows_archived"] == len(before)
    archived = {row[0]: row for row in sql(db, 'SELECT * FROM "arc""hive; x"')}
    assert archived == before  # same keys, same content, no duplicates
    assert one(db, "SELECT count(*) FROM events WHERE kind = 'old'") == 10  # where kept them
    assert one(db, "SELECT count(*) FROM events WHERE kind = 'fresh'") == 100


def test_archive_into_an_incompatible_table_is_refused(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=50, fresh=5)
    sql(db, "CREATE TABLE narrow (id INTEGER)")
    r = run_task(tmp_path, {**cleanup(), "mode": "archive", "archive_to": "narrow"})
    assert r.status == "failed" and "lacks column" in r.message
    assert one(db, "SELECT count(*) FROM events") == 55


def test_cleanup_pauses_while_replicas_lag(tmp_path: Path) -> None:
    from tests.tasks import lagging
    from wellkept.registry import Registry

    db = make_app_db(tmp_path / "app.sqlite3", old=300, fresh=10)
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(yaml.safe_dump({
        "targets": {"app": {"url": "lagsqlite:///app.sqlite3"}},
        "tasks": {"t": {**cleanup(batch_size=100), "target": "app", "max_replica_lag": "5s"}}}))
    registry = Registry.default()
    registry.connectors["lagsqlite"] = "tests.tasks.lagging:LaggingSQLite"
    lagging.SCRIPT[:] = [30.0, 12.0, 2.0]  # lagging twice, then caught up; later: unknown
    engine = Engine(load_config(cfg, registry=registry), registry=registry)
    r = engine.run(engine.resolve(["t"])).results[0]
    assert r.status == "completed", r.message
    assert r.metrics["rows_deleted"] == 300
    assert lagging.CALLS[:3] == [30.0, 12.0, 2.0]
    assert r.details["timings_seconds"]["replica_wait"] >= 1.9  # two 1 s pauses
    assert one(db, "SELECT count(*) FROM events") == 10


# --- archive files: reconciliation never takes committed batches back out --------------------


def archived_ids(path: Path) -> list[int]:
    import gzip
    import json

    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["id"] for line in fh]


def test_a_key_used_again_does_not_take_archived_batches_back_out(tmp_path: Path) -> None:
    """SQLite gives a new row the largest rowid + 1, so after a cleanup that deleted the
    newest rows their keys come back. The next run must not read "first key exists" as
    "that batch never committed": those rows are deleted and the archive is their only copy."""
    db = make_app_db(tmp_path / "app.sqlite3", old=1000, fresh=0)
    rule = {**cleanup(batch_size=300), "mode": "archive", "archive_to": "archive/ev.jsonl.gz"}
    r = run_task(tmp_path, rule)
    assert r.status == "completed" and r.metrics["rows_archived"] == 1000, r.message
    assert one(db, "SELECT count(*) FROM events") == 0
    sql(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
            "INSERT INTO events (kind, body, created_at) SELECT 'fresh', 'y', ? FROM n", ts(NOW))
    assert one(db, "SELECT min(id) || '-' || max(id) FROM events") == "1-1000"
    again = run_task(tmp_path, rule)
    assert again.status == "completed", again.message
    assert again.details["archive_rows_dropped"] == 0
    assert archived_ids(tmp_path / "archive" / "ev.jsonl.gz") == list(range(1, 1001))


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".parquet"])
def test_an_archive_whose_index_is_lost_is_refused_not_emptied(tmp_path: Path,
                                                               suffix: str) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=200, fresh=10)
    rule = {**cleanup(batch_size=100), "mode": "archive", "archive_to": f"archive/ev{suffix}"}
    assert run_task(tmp_path, rule).metrics["rows_archived"] == 200
    path = tmp_path / "archive" / f"ev{suffix}"
    index = path / ".wkindex" if suffix == ".parquet" else path.with_name(f".{path.name}.wkindex")
    index.unlink()  # e.g. copied without its hidden sidecar
    before = sorted((p.name, p.stat().st_size) for p in path.parent.rglob("*"))
    sql(db, "UPDATE events SET created_at = ? WHERE id > 205", ts(NOW - timedelta(days=99)))
    r = run_task(tmp_path, rule)
    assert r.status == "failed" and "index" in r.message, r.message
    assert sorted((p.name, p.stat().st_size) for p in path.parent.rglob("*")) == before
    assert one(db, "SELECT count(*) FROM events") == 10  # nothing deleted, so nothing unarchived


def test_an_archive_shorter_than_its_index_is_refused(tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=200, fresh=10)
    rule = {**cleanup(batch_size=100), "mode": "archive", "archive_to": "archive/ev.jsonl.gz"}
    assert run_task(tmp_path, rule).metrics["rows_archived"] == 200
    path = tmp_path / "archive" / "ev.jsonl.gz"
    with path.open("r+b") as fh:  # the second batch's rows are gone from the file
        fh.truncate(path.stat().st_size - 10)
    sql(db, "UPDATE events SET created_at = ? WHERE id > 200", ts(NOW - timedelta(days=99)))
    r = run_task(tmp_path, rule)
    assert r.status == "failed" and "shorter" in r.message, r.message
    assert one(db, "SELECT count(*) FROM events") == 10


def test_a_batch_left_in_another_days_file_is_taken_back_out(tmp_path: Path) -> None:
    """A run killed in its first batch (no checkpoint yet) or one whose first batch failed,
    under another {date} or {time}: its file holds a batch whose delete never committed. The
    next run is no resume, yet it must take that batch out, or those rows end up archived
    twice (there, and in its own file)."""
    from wellkept.archive_file import ArchiveFile

    db = make_app_db(tmp_path / "app.sqlite3", old=500, fresh=10)
    folder = tmp_path / "archive"
    folder.mkdir()
    left = ArchiveFile(folder / "ev-2001-01-01.jsonl.gz")  # written, then the run was killed
    left.open(lambda k: True)
    head = [dict(zip(("id", "kind", "body", "created_at"), r, strict=True))
            for r in sql(db, "SELECT * FROM events ORDER BY id LIMIT 100")]
    left.append(head, 1, 100)
    done = ArchiveFile(folder / "ev-2001-01-02.jsonl.gz")  # a finished day, not to be touched
    done.open(lambda k: True)
    done.append([{"id": -1}], -1, -1)
    done.mark_committed()
    untouched = sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*2001-01-02*"))
    (folder / "ev-2001-01-03.jsonl.gz").write_bytes(b"not ours")  # no index: not ours
    rule = {**cleanup(batch_size=200), "mode": "archive",
            "archive_to": "archive/ev-{date}.jsonl.gz"}
    r = run_task(tmp_path, rule)
    assert r.status == "completed" and r.metrics["rows_archived"] == 500, r.message
    assert r.details["archive_rows_dropped"] == 100
    assert archived_ids(folder / "ev-2001-01-01.jsonl.gz") == []
    today = Path(r.details["archive_file"])
    assert sorted(archived_ids(today)) == list(range(1, 501))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*2001-01-02*")) \
        == untouched
    assert (folder / "ev-2001-01-03.jsonl.gz").read_bytes() == b"not ours"


def test_a_full_archive_disk_after_some_batches_is_a_partial_failure(tmp_path: Path) -> None:
    """An I/O error writing the archive (here: no space left) fails the batch it hit, which
    is rolled back; the batches before it stay deleted and archived, and the run says so
    (partial_failure with their counts), like any other batch failure; the archive, cut back
    to the batches that committed, stays readable. With room again, the next run resumes and
    the archive holds every deleted row once."""
    db = make_app_db(tmp_path / "app.sqlite3", old=3000, fresh=10)
    sql(db, "UPDATE events SET body = hex(randomblob(200))")  # barely compressible
    with tmpfs(tmp_path / "small", "size=256k") as small:
        rule = {**cleanup(batch_size=200), "mode": "archive",
                "archive_to": str(small / "ev.jsonl.gz")}
        r = run_task(tmp_path, rule)
        assert r.status == "partial_failure", (r.status, r.message)
        assert "No space left" in r.message and not any("Traceback" in e for e in r.errors)
        assert 0 < r.metrics["rows_deleted"] == r.metrics["rows_archived"] < 3000
        assert one(db, "SELECT count(*) FROM events") == 3010 - r.metrics["rows_deleted"]
        # the failed batch's half-written member is gone: the archive reads back whole
        assert sorted(archived_ids(small / "ev.jsonl.gz")) \
            == list(range(1, r.metrics["rows_deleted"] + 1))
        subprocess.run(["mount", "-o", "remount,size=4m", str(small)], check=True)
        again = run_task(tmp_path, rule)
        assert again.status == "completed", again.message
        assert again.details["recovery"]["strategy"] == "resume"
        assert sorted(archived_ids(small / "ev.jsonl.gz")) == list(range(1, 3001))


@pytest.mark.parametrize("render", [
    lambda t: str(t.timestamp()),       # Unix time, but stored as text
    lambda t: t.strftime("%d/%m/%Y"),   # a local date format
])
def test_cleanup_refuses_text_that_is_not_an_iso_date(tmp_path: Path, render: Any) -> None:
    """Text is compared as text: only ISO 8601 sorts like time. Unix seconds stored as text
    ('1793186453.6' < '2026-…') matched every row, fresh ones too, and dd/mm/yyyy matched
    rows by their day of the month."""
    db = script(tmp_path / "app.sqlite3", "CREATE TABLE hits (id INTEGER PRIMARY KEY, at TEXT);",
                {"hits": [(i, render(NOW - timedelta(days=40 if i <= 50 else 0, hours=i)))
                          for i in range(1, 101)]})
    for dry_run in (True, False):
        r = run_task(tmp_path, cleanup("hits", "at"), dry_run=dry_run)
        assert_clean_failure(r, "not an ISO 8601")
    assert one(db, "SELECT count(*) FROM hits") == 100


def test_nothing_matching_the_where_conditions_is_not_called_nothing_old(
        tmp_path: Path) -> None:
    """With `where` (or `unsafe_where`), old rows may all be there and none meet the
    conditions: the message must say so, not that no rows are older than the retention."""
    db = make_app_db(tmp_path / "app.sqlite3", old=50, fresh=5)
    for extra in ({"where": [{"column": "kind", "op": "=", "value": "archived"}]},
                  {"unsafe_where": "kind = 'archived'"}):
        for dry_run in (True, False):
            r = run_task(tmp_path, cleanup(**extra), dry_run=dry_run)
            assert r.status == "completed" and r.metrics["rows_matched"] == 0, r.message
            assert r.message == ("nothing to delete: no rows in events older than 30d meet "
                                 "the where conditions"), r.message
    assert run_task(tmp_path, cleanup(retention="3000d")).message \
        == "nothing to delete: no rows in events older than 3000d"
    assert one(db, "SELECT count(*) FROM events") == 55
