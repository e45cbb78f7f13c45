"""The PostgreSQL catalog checks on a real server: each test plants a condition, then checks the
finding (and, where it matters, the database itself)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from wellkept.connectors import pg_catalog as pc
from wellkept.errors import ConnectorError, Unavailable

Conn = psycopg.Connection[Any]


class Db:
    """One fresh test database: autocommit connections (closed after the test) and a runner."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[Conn] = []

    def connect(self) -> Conn:
        self.opened.append(psycopg.connect(self.url, autocommit=True))
        return self.opened[-1]

    def run(self, *statements: str) -> None:
        """Run statements one by one in a new session, then flush its statistics."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.execute("SELECT pg_stat_force_next_flush()")

    def value(self, query: str) -> Any:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None

    def close(self) -> None:
        for conn in self.opened:
            conn.close()


@pytest.fixture
def db(postgres_db: str) -> Iterator[Db]:
    made = Db(postgres_db)
    yield made
    made.close()


def in_thread(conn: Conn, statement: str) -> tuple[threading.Thread, list[BaseException]]:
    """Start a statement that blocks (or sleeps) in another thread; errors are collected."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, errors


def wait_for(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def catalog_snapshot(db: Db) -> Any:
    return db.value("SELECT json_build_object("
                    "'relations', (SELECT array_agg(oid::bigint || ':' || relfilenode ORDER BY oid)"
                    "              FROM pg_class),"
                    "'extensions', (SELECT array_agg(extname ORDER BY extname) FROM pg_extension),"
                    "'settings', (SELECT array_agg(setting ORDER BY name) FROM pg_settings"
                    "             WHERE name IN ('statement_timeout', 'lock_timeout')))")


# --- bounded ------------------------------------------------------------------------------------


def test_bounded_returns_json_ready_rows(db: Db) -> None:
    rows = pc.bounded(db.connect(), """
        SELECT now() AS ts, 1.5::numeric AS num, 3::numeric AS whole, 'NaN'::float8 AS nan,
               '127.0.0.1'::inet AS ip, interval '90 seconds' AS iv, '\\x00ff'::bytea AS raw,
               ARRAY[1, 2] AS arr, '{"a": 1}'::jsonb AS doc, %s::int AS param""", (7,))
    row = rows[0]
    json.dumps(rows)
    assert isinstance(row["ts"], str) and "T" in row["ts"]
    assert row["num"] == 1.5 and isinstance(row["whole"], int) and row["whole"] == 3
    assert row["nan"] is None and row["ip"] == "127.0.0.1" and row["iv"] == 90.0
    assert row["raw"] == "00ff" and row["arr"] == [1, 2] and row["doc"] == {"a": 1}
    assert row["param"] == 7


def test_bounded_is_read_only_and_leaves_no_setting_behind(db: Db) -> None:
    conn = db.connect()
    with pytest.raises(ConnectorError, match="read-only transaction"):
        pc.bounded(conn, "CREATE TABLE sneaky (id int)")
    assert db.value("SELECT to_regclass('sneaky')") is None
    pc.bounded(conn, "SELECT 1 AS one", timeout_ms=1234)
    # SET LOCAL ended with the transaction: the session keeps its own settings.
    assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
    assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_bounded_times_out_alone_and_the_connection_survives(db: Db) -> None:
    db.run("CREATE TABLE held (id int)")
    conn = db.connect()
    t0 = time.monotonic()
    with pytest.raises(Unavailable, match="statement timeout"):
        pc.bounded(conn, "SELECT pg_sleep(5)", timeout_ms=200)
    assert time.monotonic() - t0 < 3
    holder = db.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
    with pytest.raises(Unavailable, match="lock timeout"):
        pc.bounded(conn, "SELECT count(*) FROM held", timeout_ms=200)
    holder.execute("ROLLBACK")
    assert pc.bounded(conn, "SELECT count(*) AS n FROM held") == [{"n": 0}]


def test_bounded_needs_an_autocommit_connection(db: Db) -> None:
    with psycopg.connect(db.url) as conn, pytest.raises(ConnectorError, match="autocommit"):
        pc.bounded(conn, "SELECT 1")


# --- database_stats -----------------------------------------------------------------------------


def test_database_stats_sizes_tables_indexes_cache_and_connections(db: Db) -> None:
    db.run("CREATE TABLE big (id int PRIMARY KEY, body text)",
           "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g",
           "CREATE INDEX big_body ON big (body)",
           "DELETE FROM big WHERE id <= 5000",
           "CREATE TABLE small (id int)", "INSERT INTO small VALUES (1)")
    # (apart: ANALYZE sets absolute counts, then unflushed deltas of the session would add up)
    db.run("ANALYZE", "SELECT count(*) FROM big WHERE id = 7")
    stats = pc.database_stats(db.connect(), top=5)
    json.dumps(stats)
    assert not [k for k, v in stats.items() if isinstance(v, dict) and "error" in v], stats

    database = stats["database"]
    assert database["name"] == db.url.rsplit("/", 1)[1]
    assert database["size_bytes"] > 1_000_000 and database["version"].startswith("15")
    assert database["in_recovery"] is False

    tables = stats["top_tables"]
    assert [t["table"] for t in tables] == ["big", "small"]
    big = tables[0]
    assert big["schema"] == "public"
    assert big["total_bytes"] == db.value("SELECT pg_total_relation_size('big')")
    assert big["total_bytes"] == big["table_bytes"] + big["index_bytes"]
    assert big["live_tuples"] == 15000 and big["dead_tuples"] == 5000
    assert big["idx_scan"] >= 1 and big["seq_scan"] >= 1
    assert big["last_vacuum"] is None and isinstance(big["last_analyze"], str)

    indexes = by(stats["top_indexes"], "index")
    assert set(indexes) == {"big_pkey", "big_body"}
    assert indexes["big_pkey"]["primary"] and indexes["big_pkey"]["unique"]
    assert not indexes["big_body"]["unique"]
    assert indexes["big_body"]["bytes"] == db.value("SELECT pg_relation_size('big_body')")
    assert stats["top_indexes"][0]["index"] == "big_body"

    cache = stats["cache"]
    assert set(cache) == {"heap_hit_ratio", "index_hit_ratio"}
    assert isinstance(cache["heap_hit_ratio"], float) and 0 <= cache["heap_hit_ratio"] <= 100

    connections = stats["connections"]
    assert connections["by_state"].get("active", 0) >= 1
    assert connections["total"] == sum(connections["by_state"].values())
    assert connections["max_connections"] == int(db.value("SHOW max_connections"))
    assert connections["percent"] == round(
        100 * connections["total"] / connections["max_connections"], 1)

    assert stats["replication"] == {"is_replica": False, "lag_seconds": None, "replicas": []}


def test_database_stats_cache_ratio_is_none_without_reads(db: Db) -> None:
    assert pc.database_stats(db.connect())["cache"] == {"heap_hit_ratio": None,
                                                        "index_hit_ratio": None}


def test_database_stats_lists_replication_slots(db: Db) -> None:
    slot = f"wk_test_{uuid.uuid4().hex[:8]}"
    db.run(f"SELECT pg_create_physical_replication_slot('{slot}', true)")
    try:
        db.run("CREATE TABLE churn AS SELECT g FROM generate_series(1, 50000) g")
        slots = by(pc.database_stats(db.connect(), top=100)["slots"], "slot_name")
        assert slots[slot]["active"] is False and slots[slot]["slot_type"] == "physical"
        assert slots[slot]["wal_retained_bytes"] > 0
    finally:
        db.run(f"SELECT pg_drop_replication_slot('{slot}')")


def test_database_stats_long_queries_and_blocking(db: Db) -> None:
    db.run("CREATE TABLE queue (id int)", "INSERT INTO queue VALUES (1)")
    holder, waiter, sleeper, me = db.connect(), db.connect(), db.connect(), db.connect()
    holder.execute("BEGIN")
    holder.execute("UPDATE queue SET id = 1 WHERE id = 1")
    blocked, blocked_errors = in_thread(waiter, "UPDATE queue SET id = 2 WHERE id = 1")
    slept, _ = in_thread(sleeper, "SELECT pg_sleep(3)")
    try:
        def both() -> dict[str, Any] | None:
            stats = pc.database_stats(me, long_query_seconds=0.5)
            pids = {q["pid"] for q in stats["long_queries"]}
            ready = sleeper.info.backend_pid in pids and stats["blocking"]
            return stats if ready else None

        stats = wait_for(both)
        assert stats, "the sleeping and the blocked sessions never showed up"
        sleeping = by(stats["long_queries"], "pid")[sleeper.info.backend_pid]
        assert sleeping["state"] == "active" and sleeping["seconds"] >= 0.5
        assert sleeping["query"] == "SELECT pg_sleep(3)"
        assert me.info.backend_pid not in by(stats["long_queries"], "pid")
        lock = by(stats["blocking"], "blocked_pid")[waiter.info.backend_pid]
        assert lock["blocking_pid"] == holder.info.backend_pid
        assert lock["blocked_query"] == "UPDATE queue SET id = 2 WHERE id = 1"
        assert lock["blocking_query"] == "UPDATE queue SET id = 1 WHERE id = 1"
        assert lock["seconds"] >= 0
        long_queries = pc.database_stats(me, long_query_seconds=3600)["long_queries"]
        assert sleeper.info.backend_pid not in by(long_queries, "pid")
    finally:
        holder.execute("ROLLBACK")
        blocked.join(10)
        slept.join(10)
    assert not blocked_errors


def test_a_blocked_section_fails_alone(db: Db) -> None:
    db.run("CREATE TABLE locked (id int PRIMARY KEY)", "INSERT INTO locked VALUES (1)",
           "SELECT count(*) FROM locked")
    holder = db.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
    try:
        t0 = time.monotonic()
        stats = pc.database_stats(db.connect(), timeout_ms=300)
        elapsed = time.monotonic() - t0
    finally:
        holder.execute("ROLLBACK")
    # Sizing a table takes a brief AccessShareLock, so that section waits, then gives up alone.
    assert set(stats["top_tables"]) == {"error"}
    assert "lock timeout" in stats["top_tables"]["error"]
    assert elapsed < 5
    assert stats["database"]["size_bytes"] > 0
    assert by(stats["top_indexes"], "index")["locked_pkey"]["primary"] is True
    assert stats["connections"]["total"] >= 2
    for name in ("cache", "long_queries", "blocking", "replication", "slots"):
        assert not (isinstance(stats[name], dict) and "error" in stats[name]), name


# --- bloat estimates ----------------------------------------------------------------------------


def test_table_bloat_estimate_is_close_to_pgstattuple(db: Db) -> None:
    db.run("CREATE EXTENSION pgstattuple",
           "CREATE TABLE items (id bigint, payload text, created timestamptz)",
           "INSERT INTO items SELECT g, md5(g::text), now() FROM generate_series(1, 100000) g",
           "CREATE TABLE fresh AS SELECT * FROM items",
           # every other row: the pages stay, half empty (a deleted tail would be truncated)
           "DELETE FROM items WHERE id % 2 = 0")
    db.run("VACUUM items", "ANALYZE")
    rows = by(pc.table_bloat(db.connect()), "table")
    items = rows["items"]
    exact = db.value("SELECT free_percent + dead_tuple_percent FROM pgstattuple('items')")
    error = items["bloat_percent"] - exact
    print(f"\ntable bloat: estimate {items['bloat_percent']}% vs pgstattuple {exact:.1f}% "
          f"(error {error:+.1f} points)")
    assert abs(error) <= 15
    assert items["bytes"] == db.value("SELECT pg_relation_size('items')")
    assert items["bloat_bytes"] == items["bytes"] - items["expected_bytes"]
    assert items["estimated"] is True and items["schema"] == "public"
    assert items["live_tuples"] == 50000 and items["dead_tuples"] == 0
    fresh_exact = db.value("SELECT free_percent + dead_tuple_percent FROM pgstattuple('fresh')")
    assert abs(rows["fresh"]["bloat_percent"] - fresh_exact) <= 15
    assert list(rows) == ["items", "fresh"]  # worst first
    assert [r["table"] for r in pc.table_bloat(db.connect(), limit=1)] == ["items"]
    assert pc.table_bloat(db.connect(), min_bytes=items["bloat_bytes"] + 1) == []


def test_table_bloat_skips_unanalyzed_tables_catalogs_and_toast(db: Db) -> None:
    db.run("CREATE TABLE never_analyzed (id int, body text)",
           "INSERT INTO never_analyzed SELECT g, repeat('x', 3000) FROM generate_series(1, 500) g",
           "CREATE TABLE analyzed (id int, body text)",
           # hex digests barely compress: 6 kB values go to TOAST
           "INSERT INTO analyzed SELECT g, (SELECT string_agg(md5(g || '.' || i), '') "
           "FROM generate_series(1, 200) i) FROM generate_series(1, 500) g")
    db.run("VACUUM ANALYZE analyzed")  # only VACUUM counts the TOAST table's pages
    assert db.value("SELECT reltuples FROM pg_class WHERE relname = 'never_analyzed'") == -1
    rows = pc.table_bloat(db.connect(), limit=1000)
    assert [r["table"] for r in rows] == ["analyzed"]
    assert {r["schema"] for r in rows} == {"public"}
    # Its TOAST pages count in its size, and freshly written they are not bloat.
    heap, toast = db.value("SELECT array[pg_relation_size(oid), pg_relation_size(reltoastrelid)] "
                           "FROM pg_class WHERE relname = 'analyzed'")
    assert toast > heap > 0
    assert rows[0]["bytes"] == heap + toast and rows[0]["bloat_percent"] < 10


def test_index_bloat_grows_after_a_mass_delete(db: Db) -> None:
    db.run("CREATE EXTENSION pgstattuple",
           "CREATE TABLE calm (id int, v int)", "CREATE TABLE churned (id int, v int)",
           "INSERT INTO calm SELECT g, g FROM generate_series(1, 100000) g",
           "INSERT INTO churned SELECT g, g FROM generate_series(1, 100000) g",
           "CREATE INDEX calm_v ON calm (v)", "CREATE INDEX churned_v ON churned (v)",
           "CREATE INDEX churned_hash ON churned USING hash (v)",
           "DELETE FROM churned WHERE id % 10 <> 0")
    db.run("VACUUM churned", "ANALYZE")
    rows = by(pc.index_bloat(db.connect()), "index")
    assert set(rows) == {"calm_v", "churned_v"}  # btree only
    calm, churned = rows["calm_v"], rows["churned_v"]
    density = db.value("SELECT avg_leaf_density FROM pgstatindex('churned_v')")
    print(f"\nindex bloat: fresh {calm['bloat_percent']}%, after deleting 90% "
          f"{churned['bloat_percent']}% (pgstatindex leaf density {density}%)")
    assert calm["bloat_percent"] < 15
    assert churned["bloat_percent"] > calm["bloat_percent"] + 50
    assert churned["bytes"] == db.value("SELECT pg_relation_size('churned_v')")
    assert churned["table"] == "churned" and churned["estimated"] is True
    assert pc.index_bloat(db.connect(), limit=1)[0]["index"] == "churned_v"


# --- exact_bloat --------------------------------------------------------------------------------


def test_exact_bloat_without_the_extension_reports_and_installs_nothing(db: Db) -> None:
    before = catalog_snapshot(db)
    result = pc.exact_bloat(db.connect(), [("table", "public", "anything")])
    assert set(result) == {"error"}
    assert "pgstattuple is not installed" in result["error"]
    assert catalog_snapshot(db) == before


def test_exact_bloat_installs_when_asked_and_measures(db: Db) -> None:
    db.run("CREATE TABLE items (id int PRIMARY KEY, payload text)",
           "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 50000) g",
           "CREATE INDEX items_hash ON items USING hash (id)",
           "DELETE FROM items WHERE id % 2 = 0")
    db.run("VACUUM items", "ANALYZE items")
    conn = db.connect()
    wanted = [("table", "public", "items"), ("index", "public", "items_pkey"),
              ("index", "public", "items_hash"), ("table", "public", "missing"),
              ("index", "public", "items")]
    result = pc.exact_bloat(conn, wanted, install_extension=True)
    assert result["installed"] is True
    assert db.value("SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'") == 1
    measured = by(result["results"], "name")
    table, index = measured["items"], measured["items_pkey"]
    assert table["method"] == "pgstattuple_approx" and table["kind"] == "table"
    exact = db.value("SELECT free_percent + dead_tuple_percent FROM pgstattuple('items')")
    assert abs(table["bloat_percent"] - exact) <= 5
    assert table["bytes"] == db.value("SELECT pg_relation_size('items')")
    assert index["method"] == "pgstatindex" and 40 <= index["bloat_percent"] <= 60
    assert index["bytes"] == db.value("SELECT pg_relation_size('items_pkey')")
    reasons = {(s["name"], s["kind"]): s["reason"] for s in result["skipped"]}
    assert reasons == {("items_hash", "index"): "not a btree index",
                       ("missing", "table"): "no such relation",
                       ("items", "index"): "not a btree index"}
    json.dumps(result)
    again = pc.exact_bloat(conn, wanted[:1], install_extension=True)
    assert again["installed"] is False and len(again["results"]) == 1


def test_exact_bloat_stops_when_the_budget_is_spent(db: Db) -> None:
    db.run("CREATE EXTENSION pgstattuple", "CREATE TABLE a (id int PRIMARY KEY)",
           "CREATE TABLE b (id int)", "INSERT INTO a SELECT generate_series(1, 1000)")
    conn = db.connect()
    nothing = pc.exact_bloat(conn, [("table", "public", "a"), ("index", "public", "a_pkey")],
                             budget_seconds=0)
    assert nothing["results"] == []
    assert [s["reason"] for s in nothing["skipped"]] == ["time budget spent"] * 2
    # The first scan waits on a lock until the budget runs out; the rest are not started.
    holder = db.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
    try:
        t0 = time.monotonic()
        spent = pc.exact_bloat(conn, [("table", "public", "a"), ("table", "public", "b")],
                               budget_seconds=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        holder.execute("ROLLBACK")
    assert spent["results"] == []
    first, second = spent["skipped"]
    assert first["name"] == "a" and first["reason"].startswith("time budget spent: ")
    assert second == {"kind": "table", "schema": "public", "name": "b",
                      "reason": "time budget spent"}


# --- index_health -------------------------------------------------------------------------------


def test_invalid_indexes_leftovers_and_builds_in_progress(db: Db) -> None:
    db.run("CREATE TABLE dup (v int)", "INSERT INTO dup VALUES (1), (1), (2)",
           "CREATE TABLE redo (v int)", "CREATE INDEX redo_v ON redo (v)",
           "CREATE TABLE build (v int)")
    conn = db.connect()
    for name in ("dup_v_key", "foo_ccnew"):
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON dup (v)")
    # A REINDEX CONCURRENTLY cancelled while it waits for a writer leaves redo_v_ccnew behind.
    writer = db.connect()
    writer.execute("BEGIN")
    writer.execute("INSERT INTO redo VALUES (1)")
    conn.execute("SET statement_timeout = '500ms'")
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("REINDEX INDEX CONCURRENTLY redo_v")
    conn.execute("RESET statement_timeout")
    writer.execute("ROLLBACK")

    invalid = by(pc.index_health(db.connect())["invalid_indexes"], "index")
    assert set(invalid) == {"dup_v_key", "foo_ccnew", "redo_v_ccnew"}
    assert invalid["dup_v_key"]["leftover"] is False
    assert invalid["foo_ccnew"]["leftover"] is True and invalid["redo_v_ccnew"]["leftover"]
    assert not any(row["building"] for row in invalid.values())
    assert invalid["dup_v_key"]["table"] == "dup" and invalid["dup_v_key"]["bytes"] >= 0

    # A concurrent build waiting for a writer is INVALID too, but marked as building.
    writer.execute("BEGIN")
    writer.execute("INSERT INTO build VALUES (1)")
    builder = db.connect()
    thread, errors = in_thread(builder, "CREATE INDEX CONCURRENTLY build_v ON build (v)")
    try:
        def building() -> dict[str, Any] | None:
            found = by(pc.index_health(conn)["invalid_indexes"], "index").get("build_v")
            return found if found and found["building"] else None

        assert wait_for(building), "the build in progress was not reported as building"
        assert not by(pc.index_health(conn)["invalid_indexes"], "index")["foo_ccnew"]["building"]
    finally:
        writer.execute("COMMIT")
        thread.join(10)
    assert not errors
    assert "build_v" not in by(pc.index_health(conn)["invalid_indexes"], "index")


def test_unused_indexes_never_include_constraint_indexes(db: Db) -> None:
    db.run("CREATE TABLE acct (id int PRIMARY KEY, email text UNIQUE, a int, b int, "
           "span int4range, EXCLUDE USING gist (span WITH &&))",
           "CREATE INDEX acct_a ON acct (a)", "CREATE INDEX acct_b ON acct (b)",
           "CREATE UNIQUE INDEX acct_lower_email ON acct (lower(email))",
           "INSERT INTO acct SELECT g, 'u' || g, g, g, int4range(g * 10, g * 10 + 5) "
           "FROM generate_series(1, 2000) g",
           "ANALYZE acct", "SELECT pg_stat_reset()")
    db.run("SET enable_seqscan = off", "SELECT * FROM acct WHERE b = 3")
    health = pc.index_health(db.connect())
    unused = by(health["unused_indexes"], "index")
    assert set(unused) == {"acct_a"}
    row = unused["acct_a"]
    assert row["idx_scan"] == 0 and row["table"] == "acct"
    assert row["bytes"] == db.value("SELECT pg_relation_size('acct_a')")
    assert isinstance(row["stats_reset"], str) and row["days_since_stats_reset"] == 0.0
    big = pc.index_health(db.connect(), unused_min_bytes=row["bytes"] + 1)
    assert big["unused_indexes"] == []


def test_duplicate_indexes_identical_and_prefix(db: Db) -> None:
    db.run("CREATE TABLE d (id int PRIMARY KEY, a int, b int, c text)",
           "CREATE INDEX d_a ON d (a)",
           "CREATE INDEX d_a_b ON d (a, b)",
           "CREATE INDEX d_a_b_copy ON d (a, b)",
           "CREATE UNIQUE INDEX d_b_key ON d (b)",
           "CREATE INDEX d_b ON d (b)",
           "CREATE UNIQUE INDEX d_c_key ON d (c)",
           "CREATE INDEX d_c_id ON d (c, id)",
           "CREATE INDEX d_a_positive ON d (a) WHERE b > 0",
           "CREATE INDEX d_c_pattern ON d (c text_pattern_ops)",
           "CREATE INDEX d_a_desc ON d (a DESC)",
           "CREATE INDEX d_lower ON d (lower(c))",
           "CREATE INDEX d_lower_again ON d (lower(c))",
           "CREATE INDEX d_id ON d (id)",
           "CREATE INDEX d_a_hash ON d USING hash (a)",
           "CREATE INDEX d_b_incl ON d (b) INCLUDE (a)",
           "CREATE INDEX d_b_a ON d (b, a)")
    found = {r["index"]: (r["covered_by"], r["reason"])
             for r in pc.index_health(db.connect())["duplicate_indexes"]}
    assert found == {
        "d_a": ("d_a_b", "prefix"),
        "d_a_b_copy": ("d_a_b", "identical"),
        "d_b": ("d_b_key", "identical"),           # the plain copy of a unique index
        "d_lower_again": ("d_lower", "identical"),
        "d_id": ("d_pkey", "identical"),
        "d_b_incl": ("d_b_a", "prefix"),           # (b) INCLUDE (a) is served by (b, a)
    }
    # d_c_key is unique: a prefix of d_c_id, yet never redundant (it enforces uniqueness).


def test_sequences_near_their_limit(db: Db) -> None:
    db.run("CREATE SEQUENCE s95 MAXVALUE 1000", "SELECT setval('s95', 950)",
           "CREATE SEQUENCE s_low MAXVALUE 1000", "SELECT setval('s_low', 100)",
           "CREATE SEQUENCE s_unused",
           # a default (bigint) sequence feeding an int4 column runs out at 2^31 - 1
           "CREATE SEQUENCE s_big",
           "CREATE TABLE narrow (id int4 DEFAULT nextval('s_big'))",
           "CREATE TABLE wide (id int8 DEFAULT nextval('s_big'))",
           f"SELECT setval('s_big', {2**31 - 1 - 1000})",
           "CREATE SEQUENCE s_bigcol", "CREATE TABLE wide2 (id int8 DEFAULT nextval('s_bigcol'))",
           f"SELECT setval('s_bigcol', {2**31})",
           "CREATE TABLE serial_t (id serial, label text)",
           "SELECT setval('serial_t_id_seq', 2000000000)",
           "CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY)",
           "CREATE SEQUENCE s_desc INCREMENT -1 MINVALUE -100 MAXVALUE -1 START -1",
           "SELECT setval('s_desc', -95)",
           # partitions' defaults call the parent's sequence too: reported once, by its owner
           "CREATE TABLE parted (id serial, k int) PARTITION BY RANGE (k)",
           "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10)",
           "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20)",
           "SELECT setval('parted_id_seq', 1900000000)")
    found = by(pc.index_health(db.connect())["sequences"], "sequence")
    assert set(found) == {"s95", "s_big", "serial_t_id_seq", "s_desc", "parted_id_seq"}
    assert len(pc.index_health(db.connect())["sequences"]) == 5
    assert found["parted_id_seq"]["column"] == "public.parted.id"
    assert found["s95"]["percent_used"] == 95.0 and found["s95"]["limited_by"] == "sequence"
    big = found["s_big"]
    assert big["limited_by"] == "column" and big["column"] == "public.narrow.id"
    assert big["max_value"] == 2**31 - 1 and big["sequence_max_value"] == 2**63 - 1
    assert big["column_type"] == "integer" and big["percent_used"] >= 99.9
    assert big["last_value"] == 2**31 - 1 - 1000 and big["data_type"] == "bigint"
    serial = found["serial_t_id_seq"]
    assert serial["percent_used"] == 93.1 and serial["column"] == "public.serial_t.id"
    assert found["s_desc"]["percent_used"] == 95.0
    assert next(iter(found)) == "s_big"  # worst first
    assert set(by(pc.index_health(db.connect(), sequence_percent=99.0)["sequences"],
                  "sequence")) == {"s_big"}


def test_wraparound_databases_and_tables_with_toast(db: Db) -> None:
    db.run("CREATE TABLE docs (id int, body text)", "CREATE TABLE plain (id int)")
    db.run(*["SELECT txid_current()"] * 20)  # each call uses up one transaction id
    health = pc.index_health(db.connect(), wraparound_percent=0.0, top=1000)
    wrap = health["wraparound"]
    name = db.url.rsplit("/", 1)[1]
    mine = by(wrap["databases"], "datname")[name]
    assert mine["age"] >= 20 and mine["remaining"] == 2**31 - mine["age"]
    assert mine["percent"] == round(100 * mine["age"] / 2**31, 1)
    assert mine["autovacuum_freeze_max_age"] == int(db.value(
        "SHOW autovacuum_freeze_max_age"))
    assert mine["over_threshold"] is True
    tables = by(wrap["tables"], "table")
    docs, plain = tables["docs"], tables["plain"]
    assert docs["toast_age"] is not None and plain["toast_age"] is None
    assert docs["table_age"] >= 20 and docs["age"] == max(docs["table_age"], docs["toast_age"])
    ages = [t["age"] for t in wrap["tables"]]
    assert ages == sorted(ages, reverse=True)
    calm = pc.index_health(db.connect(), top=1)["wraparound"]
    assert len(calm["tables"]) == 1 and calm["databases"][0]["over_threshold"] is False


def test_idle_in_transaction_sessions(db: Db) -> None:
    idle, aborted = db.connect(), db.connect()
    idle.execute("BEGIN")
    idle.execute("SELECT 42")
    aborted.execute("BEGIN")
    with pytest.raises(psycopg.errors.DivisionByZero):
        aborted.execute("SELECT 1 / 0")
    time.sleep(1.2)
    found = by(pc.index_health(db.connect(), idle_tx_seconds=1)["idle_in_transaction"], "pid")
    assert found[idle.info.backend_pid]["seconds"] >= 1
    assert found[idle.info.backend_pid]["query"] == "SELECT 42"
    assert found[aborted.info.backend_pid]["state"] == "idle in transaction (aborted)"
    assert pc.index_health(db.connect())["idle_in_transaction"] == []
    idle.execute("ROLLBACK")
    aborted.execute("ROLLBACK")


# --- the checks only read -------------------------------------------------------------------------


def test_no_check_writes_anything(db: Db) -> None:
    db.run("CREATE TABLE t (id serial PRIMARY KEY, a int, body text)",
           "CREATE INDEX t_a ON t (a)", "CREATE INDEX t_a_again ON t (a)",
           "INSERT INTO t (a, body) SELECT g, md5(g::text) FROM generate_series(1, 5000) g",
           "DELETE FROM t WHERE id % 3 = 0", "ANALYZE")
    before = catalog_snapshot(db)
    conn = db.connect()
    outputs = [pc.database_stats(conn), pc.table_bloat(conn), pc.index_bloat(conn),
               pc.index_health(conn), pc.exact_bloat(conn, [("table", "public", "t")])]
    json.dumps(outputs)
    assert catalog_snapshot(db) == before
    pc.exact_bloat(conn, [("table", "public", "t")], install_extension=True)
    after = catalog_snapshot(db)
    assert set(after["extensions"]) == {*before["extensions"], "pgstattuple"}
    assert set(after["relations"]) >= set(before["relations"])  # added only the extension's views
