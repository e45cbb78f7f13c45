"""cleanup on the real MariaDB: exact counts, hostile names, lock waits, resume."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.records import RunRecord
from wellkept.types import RunStatus


@pytest.fixture
def my(mysql_db: str) -> Iterator[Any]:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=urlsplit(mysql_db).path.lstrip("/"), autocommit=True)
    yield conn
    conn.close()


def q(conn: Any, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


@pytest.fixture
def run(mysql_db: str, write_config: Callable[..., Path]) -> Callable[..., RunRecord]:
    def run_task(body: dict[str, Any], *, dry_run: bool = False) -> RunRecord:
        cfg = write_config(f"""
            targets:
              shop: {{url: "{mysql_db}", lock_timeout: 1s}}
            tasks:
              t: {json.dumps({"kind": "cleanup", "target": "shop", **body})}
            """)
        engine = Engine(load_config(cfg))
        return engine.run(engine.resolve(["t"]), dry_run=dry_run).results[0]

    return run_task


def fill(conn: Any, table: str = "events", old: int = 2500, fresh: int = 300) -> None:
    table = table.replace("`", "``")
    q(conn, f"CREATE TABLE `{table}` (id BIGINT PRIMARY KEY AUTO_INCREMENT, body VARCHAR(50), "
            "created_at DATETIME(6) NOT NULL, KEY (created_at)) ENGINE=InnoDB")
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [("old", now - timedelta(days=100, seconds=i)) for i in range(old)] + \
           [("fresh", now - timedelta(days=1, seconds=i)) for i in range(fresh)]
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO `{table}` (body, created_at) VALUES (%s, %s)", rows)


RULE = {"table": "events", "date_column": "created_at", "retention": "30d",
        "target_batch_seconds": 0}


def test_dry_run_then_exact_batched_delete(my: Any, run: Any) -> None:
    fill(my)
    dry = run({**RULE, "batch_size": 1000}, dry_run=True)
    assert dry.status is RunStatus.COMPLETED, dry.message
    assert dry.metrics == {"rows_matched": 2500, "rows_deleted": 0, "rows_archived": 0,
                           "batches": 0}
    assert dry.details["expected_batches"] == 3 and "`events`" in dry.details["statements"][0]
    assert q(my, "SELECT count(*) FROM events")[0][0] == 2800

    done = run({**RULE, "batch_size": 1000})
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.metrics == {"rows_matched": 2500, "rows_deleted": 2500, "rows_archived": 0,
                            "batches": 3}
    assert q(my, "SELECT body, count(*) FROM events GROUP BY body") == [("fresh", 300)]


def test_hostile_names_are_checked_not_executed(my: Any, run: Any) -> None:
    fill(my)
    for table in ["events`; DROP TABLE events; --", "events; DROP TABLE events"]:
        record = run({**RULE, "table": table})
        assert record.status is RunStatus.FAILED and "does not exist" in record.message
    record = run({**RULE, "date_column": "created_at` OR 1=1 --"})
    assert record.status is RunStatus.FAILED and "has no column" in record.message
    assert q(my, "SELECT count(*) FROM events")[0][0] == 2800
    fill(my, table="we`ird; tab le", old=20, fresh=5)
    record = run({**RULE, "table": "we`ird; tab le"})
    assert record.status is RunStatus.COMPLETED, record.message
    assert q(my, "SELECT count(*) FROM `we``ird; tab le`")[0][0] == 5
    assert q(my, "SELECT count(*) FROM events")[0][0] == 2800


def test_tables_without_a_key_or_a_date_column_are_refused(my: Any, run: Any) -> None:
    q(my, "CREATE TABLE nokey (body TEXT, created_at DATETIME NOT NULL)")
    q(my, "INSERT INTO nokey VALUES ('x', '2001-01-01')")
    record = run({**RULE, "table": "nokey"})
    assert record.status is RunStatus.FAILED and "refusing" in record.message
    fill(my)
    record = run({**RULE, "date_column": "body"})
    assert record.status is RunStatus.FAILED and "is varchar" in record.message
    assert q(my, "SELECT count(*) FROM nokey")[0][0] == 1


def test_a_row_lock_held_elsewhere_gives_a_clean_failure(my: Any, run: Any,
                                                          mysql_db: str) -> None:
    fill(my, old=50, fresh=5)
    holder = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                             database=urlsplit(mysql_db).path.lstrip("/"))
    with holder.cursor() as cur:  # an open transaction locking the oldest rows
        cur.execute("SELECT id FROM events ORDER BY id LIMIT 10 FOR UPDATE")
    try:
        result: dict[str, RunRecord] = {}
        t = threading.Thread(target=lambda: result.setdefault("r", run(RULE)))
        t.start()
        t.join(30)
    finally:
        holder.rollback()
        holder.close()
    record = result["r"]
    assert record.status is RunStatus.FAILED, record.message
    assert "lock_wait_timeout" in record.message
    assert q(my, "SELECT count(*) FROM events")[0][0] == 55


def test_archive_mode_copies_exactly_the_deleted_rows(my: Any, run: Any) -> None:
    fill(my, old=1500, fresh=100)
    expected = set(q(my, "SELECT id, body, created_at FROM events WHERE body = 'old' "
                         "AND id NOT IN (1, 2)"))
    rule = {**RULE, "mode": "archive", "archive_to": "events_archive", "batch_size": 400,
            "where": [{"column": "id", "op": "not in", "value": [1, 2]}]}
    dry = run(dict(rule), dry_run=True)
    assert dry.metrics["rows_matched"] == len(expected)
    assert q(my, "SHOW TABLES LIKE 'events_archive'") == []
    done = run(dict(rule))
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.metrics["rows_deleted"] == done.metrics["rows_archived"] == len(expected)
    assert set(q(my, "SELECT id, body, created_at FROM events_archive")) == expected
    assert q(my, "SELECT count(*) FROM events")[0][0] == 102


def test_no_replicas_means_no_pause(my: Any, run: Any) -> None:
    fill(my, old=100, fresh=5)
    done = run({**RULE, "max_replica_lag": "1s"})
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.details["timings_seconds"]["replica_wait"] < 1


def test_archive_to_a_csv_file(my: Any, run: Any, tmp_path: Path) -> None:
    import csv
    import gzip

    fill(my, old=700, fresh=20)
    done = run({**RULE, "mode": "archive", "archive_to": str(tmp_path / "ev-{date}.csv.gz"),
                "batch_size": 300})
    assert done.status is RunStatus.COMPLETED, done.message
    (path,) = tmp_path.glob("ev-*.csv.gz")
    with gzip.open(path, "rt") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 700 and {r["body"] for r in got} == {"old"}
    assert len({r["id"] for r in got}) == 700
    assert q(my, "SELECT count(*) FROM events")[0][0] == 20


def _uneven(conn: Any) -> set[int]:
    """Expired rows of very uneven key density: a dense run, a sparse run, a gap of a million
    keys, then a dense run again, with fresh rows among them. Returns the fresh ids."""
    q(conn, "CREATE TABLE events (id BIGINT PRIMARY KEY, body VARCHAR(50), "
            "created_at DATETIME(6) NOT NULL, KEY (created_at)) ENGINE=InnoDB")
    now = datetime.now(UTC).replace(tzinfo=None)
    ids = [*range(1, 3001), *range(3001, 9001, 7), *range(1_000_000, 1_004_000)]
    fresh = {i for i in ids if i % 5 == 0}
    rows = [(i, "fresh" if i in fresh else "old",
             now - timedelta(days=1 if i in fresh else 90, seconds=i % 1000)) for i in ids]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO events VALUES (%s, %s, %s)", rows)
    q(conn, "ANALYZE TABLE events")
    return fresh


def test_span_walk_keeps_batches_bounded_and_deletes_exactly(my: Any, run: Any) -> None:
    """Most rows match: batches delete key spans (no select), never more than batch_size
    rows each, over dense, sparse and empty stretches of keys alike."""
    fresh = _uneven(my)
    done = run({**RULE, "batch_size": 500})
    assert done.status is RunStatus.COMPLETED, done.message
    assert set(done.details["last_key"]) == {"key", "end", "per_key"}  # the span walk
    old = 3000 + len(range(3001, 9001, 7)) + 4000 - len(fresh)
    assert done.metrics["rows_deleted"] == done.metrics["rows_matched"] == old
    assert {r[0] for r in q(my, "SELECT id FROM events")} == fresh
    # bounded: at least as many batches as 500-row batches would need
    assert done.metrics["batches"] >= -(-old // 500)


def test_span_walk_resumes_from_its_checkpoint(my: Any, run: Any) -> None:
    fresh = _uneven(my)
    # cut short by its time limit: a partial failure, with the span cursor checkpointed
    first = run({**RULE, "batch_size": 300, "sleep": "0.2s", "timeout": "0.7s"})
    assert first.status is RunStatus.PARTIAL_FAILURE, first.message
    assert 0 < first.metrics["rows_deleted"] < 7000
    assert first.details.get("rows_matched_estimated") is True
    second = run({**RULE, "batch_size": 300})
    assert second.status is RunStatus.COMPLETED, second.message
    assert second.details["resumed_from"]["run_id"] == first.run_id
    total = first.metrics["rows_deleted"] + second.metrics["rows_deleted"]
    assert total == 3000 + len(range(3001, 9001, 7)) + 4000 - len(fresh)
    assert {r[0] for r in q(my, "SELECT id FROM events")} == fresh


def test_a_binary_key_resumes_and_reconciles_as_bytes(my: Any, run: Any, mysql_db: str,
                                                       tmp_path: Path) -> None:
    """A BINARY(16) key (a UUID stored compactly) is bytes: the archive index and the
    checkpoint must give the same bytes back, not their text, or an uncommitted batch looks
    committed (its rows get archived twice) and a resumed run starts at the wrong key."""
    import base64
    import gzip

    from wellkept.archive_file import ArchiveFile

    q(my, "CREATE TABLE bin_ev (id BINARY(16) PRIMARY KEY, body VARCHAR(20), "
          "created_at DATETIME(6) NOT NULL)")
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=100)
    with my.cursor() as cur:
        cur.executemany("INSERT INTO bin_ev VALUES (UNHEX(MD5(%s)), %s, %s)",
                        [(str(i), f"old{i}", old) for i in range(300)])
        cur.executemany("INSERT INTO bin_ev VALUES (UNHEX(MD5(%s)), 'fresh', NOW())",
                        [(f"f{i}",) for i in range(5)])
    keys = [r[0] for r in q(my, "SELECT id FROM bin_ev WHERE body <> 'fresh' ORDER BY id")]
    path = tmp_path / "bin.jsonl.gz"
    left = ArchiveFile(path)  # a run killed after writing its first batch, before the delete
    left.open(lambda k: True)
    head = q(my, "SELECT id, body, created_at FROM bin_ev ORDER BY id LIMIT 50")
    left.append([{"id": i, "body": b, "created_at": c} for i, b, c in head], keys[0], keys[49])
    holder = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                             database=urlsplit(mysql_db).path.lstrip("/"))
    with holder.cursor() as cur:  # a lock the third batch waits for
        cur.execute("SELECT id FROM bin_ev WHERE id = %s FOR UPDATE", (keys[50],))
    rule = {"table": "bin_ev", "date_column": "created_at", "retention": "30d",
            "target_batch_seconds": 0, "batch_size": 20, "mode": "archive",
            "archive_to": str(path)}
    try:
        first = run(dict(rule))
    finally:
        holder.rollback()
        holder.close()
    assert first.status is RunStatus.PARTIAL_FAILURE, first.message
    assert first.details["archive_rows_dropped"] == 50  # taken back out: never deleted
    assert first.metrics["rows_deleted"] == 40
    assert keys[39] < b"b'"  # the checkpoint's key, whose text would skip keys up to b"b'"
    second = run(dict(rule))
    assert second.status is RunStatus.COMPLETED, second.message
    assert second.details["recovery"]["strategy"] == "resume"
    assert second.metrics["rows_deleted"] == 260  # from the checkpoint's key on
    assert q(my, "SELECT body FROM bin_ev") == [("fresh",)] * 5
    with gzip.open(path, "rt") as fh:
        ids = [json.loads(line)["id"] for line in fh]
    assert sorted(ids) == sorted("base64:" + base64.b64encode(k).decode() for k in keys)


def test_archive_table_of_a_table_with_generated_columns(my: Any, run: Any) -> None:
    """CREATE TABLE … LIKE keeps generated columns generated, and MariaDB refuses a value
    for them: the copy leaves them out, and the archive computes the same values."""
    fill(my, old=300, fresh=10)
    q(my, "ALTER TABLE events ADD COLUMN twice BIGINT AS (CHAR_LENGTH(body) * 2) PERSISTENT, "
          "ADD COLUMN label VARCHAR(60) AS (CONCAT(body, '-', twice)) VIRTUAL")
    expected = set(q(my, "SELECT id, body, created_at, twice, label FROM events "
                         "WHERE body = 'old'"))
    done = run({**RULE, "mode": "archive", "archive_to": "events_archive", "batch_size": 100})
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.metrics["rows_deleted"] == done.metrics["rows_archived"] == 300
    assert set(q(my, "SELECT id, body, created_at, twice, label FROM events_archive")) \
        == expected
    assert q(my, "SELECT count(*) FROM events")[0][0] == 10


def test_a_killed_session_mid_batch_is_a_lost_connection(my: Any, run: Any,
                                                           mysql_db: str) -> None:
    """KILL of wellkept's session inside a batch: the batch is rolled back by the server, the
    run is a partial_failure that says the connection was lost (the rollback on the dead
    connection must not hide that behind PyMySQL's bare \"(0, '')\"), and the next run
    finishes the job."""
    fill(my, old=60, fresh=5)
    q(my, "CREATE TRIGGER slow BEFORE DELETE ON events FOR EACH ROW SET @x = SLEEP(0.02)")
    name = urlsplit(mysql_db).path.lstrip("/")
    killed = threading.Event()

    def killer() -> None:
        watcher = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                                  autocommit=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed.is_set():
            with watcher.cursor() as cur:
                cur.execute("SELECT (SELECT count(*) FROM `" + name + "`.events), id FROM "
                            "information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE "
                            "'SET @x = SLEEP%%'", (name,))  # its DELETE's trigger
                row = cur.fetchone()
                if row and row[0] <= 45:  # a batch committed, the next one is deleting
                    cur.execute(f"KILL {int(row[1])}")
                    killed.set()
            time.sleep(0.01)
        watcher.close()

    t = threading.Thread(target=killer)
    t.start()
    first = run({**RULE, "batch_size": 10, "mode": "archive", "archive_to": "events_archive"})
    t.join()
    assert killed.is_set(), first.message
    assert first.status is RunStatus.PARTIAL_FAILURE, first.message
    assert "lost the connection" in first.message and "(0, '')" not in first.message
    archived = q(my, "SELECT count(*) FROM events_archive")[0][0]
    left = q(my, "SELECT count(*) FROM events")[0][0]
    assert archived == first.metrics["rows_deleted"] == 65 - left
    second = run({**RULE, "batch_size": 10, "mode": "archive", "archive_to": "events_archive"})
    assert second.status is RunStatus.COMPLETED, second.message
    assert q(my, "SELECT count(*) FROM events_archive")[0][0] == 60
    assert q(my, "SELECT count(*) FROM events")[0][0] == 5


def test_unsafe_where_may_hold_a_percent_sign(my: Any, run: Any) -> None:
    """PyMySQL formats the statement with %: the raw condition's own % (LIKE 'x%') must
    reach the server as written, not be taken for a placeholder."""
    fill(my, old=100, fresh=10)
    q(my, "UPDATE events SET body = 'old-keep' WHERE id <= 30")
    done = run({**RULE, "unsafe_where": "body LIKE 'old%' AND body NOT LIKE '%keep'"})
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.metrics["rows_deleted"] == 70
    assert q(my, "SELECT body, count(*) FROM events GROUP BY body ORDER BY body") == [
        ("fresh", 10), ("old-keep", 30)]


def test_json_columns_keep_their_structure_in_an_archive_file(my: Any, run: Any,
                                                               tmp_path: Path) -> None:
    """MariaDB's JSON is LONGTEXT with a json_valid check, and the driver hands MySQL's JSON
    over as text too: the archive must still hold the document (as PostgreSQL's jsonb
    does), not a string of it; a plain text column that merely reads like JSON stays text."""
    import gzip

    q(my, "CREATE TABLE docs (id INT PRIMARY KEY, created_at DATETIME NOT NULL, "
          "doc JSON, note TEXT)")
    q(my, "INSERT INTO docs VALUES (1, '2001-01-01', '{\"a\": [1, 2], \"b\": null}', '[1]'), "
          "(2, '2001-01-01', NULL, '{}'), (3, '2001-01-01', '\"text\"', NULL)")
    path = tmp_path / "docs.jsonl.gz"
    done = run({"table": "docs", "date_column": "created_at", "retention": "30d",
                "mode": "archive", "archive_to": str(path)})
    assert done.status is RunStatus.COMPLETED and done.metrics["rows_archived"] == 3, \
        done.message
    with gzip.open(path, "rt") as fh:
        rows = {r["id"]: r for r in map(json.loads, fh)}
    assert rows[1]["doc"] == {"a": [1, 2], "b": None} and rows[1]["note"] == "[1]"
    assert rows[2]["doc"] is None and rows[2]["note"] == "{}"
    assert rows[3]["doc"] == "text"
