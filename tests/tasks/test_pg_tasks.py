"""PostgreSQL task kinds against the real server, each checked in the database itself."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import free_port, run_cli, wait_for
from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.records import RunRecord
from wellkept.types import RunStatus


@pytest.fixture
def pg(postgres_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def run(postgres_db: str, write_config: Callable[..., Path]) -> Callable[..., RunRecord]:
    def run_task(body: dict[str, Any], *, dry_run: bool = False,
                 target: str = "") -> RunRecord:
        extra = f", lock_timeout: {body.pop('lock_timeout')}" if "lock_timeout" in body else ""
        cfg = write_config(f"""
            targets:
              db: {{url: "{target or postgres_db}"{extra}, timeout: 3s}}
            tasks:
              t: {json.dumps({"target": "db", **body})}
            """)
        engine = Engine(load_config(cfg))
        return engine.run(engine.resolve(["t"]), dry_run=dry_run).results[0]

    return run_task


def flush(conn: psycopg.Connection[Any]) -> None:
    """PostgreSQL 15 publishes a backend's statistics asynchronously; force it."""
    conn.execute("SELECT pg_stat_force_next_flush()")


def table_stats(conn: psycopg.Connection[Any], table: str) -> dict[str, Any]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables "
                       "WHERE relname = %s", (table,)).fetchone()
    assert row is not None
    return {"dead": row[0], "last_vacuum": row[1], "last_analyze": row[2]}


def bloated_table(conn: psycopg.Connection[Any], name: str, rows: int = 20000) -> None:
    conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
    conn.execute(f"INSERT INTO {name} SELECT g, repeat('x', 50) FROM generate_series(1, %s) g",
                 (rows,))
    conn.execute(f"DELETE FROM {name} WHERE id % 2 = 0")
    flush(conn)


def test_vacuum_chooses_the_bloated_table_and_clears_dead_tuples(pg: Any, run: Any) -> None:
    bloated_table(pg, "orders")
    pg.execute("CREATE TABLE quiet (id int PRIMARY KEY)")
    pg.execute("INSERT INTO quiet SELECT generate_series(1, 100)")
    flush(pg)
    assert wait_for(lambda: table_stats(pg, "orders")["dead"] >= 10000)

    dry = run({"kind": "vacuum"}, dry_run=True)
    assert dry.status is RunStatus.COMPLETED
    assert [a["statement"] for a in dry.details["actions"]] == \
        ['VACUUM (ANALYZE) "public"."orders"']
    assert "dead tuples" in dry.details["actions"][0]["reason"]
    assert table_stats(pg, "orders")["last_vacuum"] is None
    # what it would do, and zero for what it did not do (the contract)
    assert dry.metrics == {"actions_planned": 1, "tables_processed": 0, "bytes_freed": 0}

    done = run({"kind": "vacuum"})
    assert done.status is RunStatus.COMPLETED, done.message
    assert done.metrics["tables_processed"] == 1
    assert done.details["statements"] == ['VACUUM (ANALYZE) "public"."orders"']
    assert wait_for(lambda: table_stats(pg, "orders")["last_vacuum"] is not None)
    assert table_stats(pg, "orders")["dead"] < 100
    assert table_stats(pg, "quiet")["last_vacuum"] is None  # acted only where needed


def test_a_locked_table_is_a_partial_failure_and_the_others_are_done(
        pg: Any, run: Any, postgres_db: str) -> None:
    bloated_table(pg, "busy")
    bloated_table(pg, "free")
    holder = psycopg.connect(postgres_db)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")  # open transaction holds it
    try:
        t0 = time.monotonic()
        record = run({"kind": "vacuum", "tables": ["busy", "public.free"],
                      "lock_timeout": "1s"})
        elapsed = time.monotonic() - t0
    finally:
        holder.rollback()
        holder.close()
    assert record.status is RunStatus.PARTIAL_FAILURE, record.message
    assert elapsed < 6
    errors = {a["object"]: a.get("error") for a in record.details["actions"]}
    assert "lock_timeout" in (errors["public.busy"] or "")
    assert errors["public.free"] is None
    assert wait_for(lambda: table_stats(pg, "free")["last_vacuum"] is not None)
    assert table_stats(pg, "busy")["last_vacuum"] is None


def test_vacuum_full_needs_an_explicit_table_list(run: Any) -> None:
    record = run({"kind": "vacuum", "full": True})
    assert record.status is RunStatus.FAILED and "explicit `tables:`" in record.message


def test_hostile_table_names_are_not_executed(pg: Any, run: Any) -> None:
    bloated_table(pg, "victim", rows=100)
    for name in ['victim"; DROP TABLE victim; --', "victim; DROP TABLE victim",
                 "public.victim' OR '1'='1"]:
        record = run({"kind": "vacuum", "tables": [name]})
        assert record.status is RunStatus.FAILED and "not found" in record.message
    assert pg.execute("SELECT count(*) FROM victim").fetchone()[0] == 50
    pg.execute('CREATE TABLE "we""ird; name" (id int PRIMARY KEY)')
    record = run({"kind": "vacuum", "tables": ['"we""ird; name"']})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.details["statements"] == ['VACUUM (ANALYZE) "public"."we""ird; name"']


def test_analyze_refreshes_stale_statistics(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE fresh_t (id int)")
    pg.execute("INSERT INTO fresh_t SELECT generate_series(1, 5000)")
    flush(pg)
    record = run({"kind": "analyze"})
    assert record.status is RunStatus.COMPLETED, record.message
    assert any(a["object"] == "public.fresh_t" for a in record.details["actions"])
    assert wait_for(lambda: table_stats(pg, "fresh_t")["last_analyze"] is not None)
    again = run({"kind": "analyze"})
    assert not any(a["object"] == "public.fresh_t" for a in again.details["actions"])


def index_size(pg: Any, name: str) -> int:
    return int(pg.execute("SELECT pg_relation_size(to_regclass(%s))", (name,)).fetchone()[0])


def test_reindex_rebuilds_a_bloated_index_and_drops_leftovers(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE items (id int PRIMARY KEY, code text)")
    pg.execute("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 100000) g")
    pg.execute("CREATE INDEX items_code ON items (code)")
    pg.execute("DELETE FROM items WHERE id % 10 <> 0")
    pg.execute("VACUUM ANALYZE items")
    # a failed concurrent build leaves an INVALID index behind, like a failed REINDEX does
    pg.execute("CREATE TABLE dup (x int)")
    pg.execute("INSERT INTO dup VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_x_ccnew ON dup (x)")
    assert pg.execute("SELECT NOT indisvalid FROM pg_index "
                      "WHERE indexrelid = 'dup_x_ccnew'::regclass").fetchone()[0]
    before = before_dry = index_size(pg, "items_code")

    dry = run({"kind": "reindex", "min_bytes": 0}, dry_run=True)
    assert index_size(pg, "items_code") == before_dry
    assert dry.metrics["indexes_processed"] == 0 and dry.metrics["bytes_freed"] == 0
    statements = [a["statement"] for a in dry.details["actions"]]
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."dup_x_ccnew"' in statements
    assert 'REINDEX INDEX CONCURRENTLY "public"."items_code"' in statements

    record = run({"kind": "reindex", "min_bytes": 0})
    assert record.status is RunStatus.COMPLETED, record.message
    after = index_size(pg, "items_code")
    assert after < before * 0.5, (before, after)
    assert record.metrics["bytes_freed"] > 0, record.details
    assert pg.execute("SELECT to_regclass('dup_x_ccnew')").fetchone()[0] is None


def test_views_refresh_concurrently_only_where_legal(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE sales (id int, amount int)")
    pg.execute("INSERT INTO sales VALUES (1, 10)")
    pg.execute("CREATE MATERIALIZED VIEW mv_keyed AS SELECT id, sum(amount) s FROM sales "
               "GROUP BY id")
    pg.execute("CREATE UNIQUE INDEX ON mv_keyed (id)")
    pg.execute("CREATE MATERIALIZED VIEW mv_plain AS SELECT count(*) n FROM sales")
    pg.execute("CREATE MATERIALIZED VIEW mv_empty AS SELECT DISTINCT id FROM sales WITH NO DATA")
    pg.execute("CREATE UNIQUE INDEX ON mv_empty (id)")
    pg.execute("CREATE MATERIALIZED VIEW mv_partial AS SELECT DISTINCT id FROM sales")
    pg.execute("CREATE UNIQUE INDEX ON mv_partial (id) WHERE id > 0")
    pg.execute("INSERT INTO sales VALUES (2, 5), (1, 1)")

    record = run({"kind": "views"})
    assert record.status is RunStatus.COMPLETED, record.message
    how = {a["object"]: a for a in record.details["actions"]}
    assert "CONCURRENTLY" in how["public.mv_keyed"]["statement"]
    for name, why in (("public.mv_plain", "no unique index"),
                      ("public.mv_empty", "not populated"),
                      ("public.mv_partial", "no unique index")):
        assert "CONCURRENTLY" not in how[name]["statement"], name
        assert why in how[name]["reason"], (name, how[name]["reason"])
    assert pg.execute("SELECT s FROM mv_keyed WHERE id = 1").fetchone()[0] == 11
    assert pg.execute("SELECT n FROM mv_plain").fetchone()[0] == 3
    assert pg.execute("SELECT count(*) FROM mv_empty").fetchone()[0] == 2


def test_index_health_finds_planted_problems(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
    pg.execute("INSERT INTO t SELECT g, g % 7, g FROM generate_series(1, 20000) g")
    pg.execute("CREATE INDEX t_a ON t (a)")
    pg.execute("CREATE INDEX t_a_again ON t (a)")
    pg.execute("CREATE INDEX t_a_b ON t (a, b)")
    pg.execute("CREATE SEQUENCE nearly_done MAXVALUE 100")
    pg.execute("SELECT setval('nearly_done', 96)")
    pg.execute("CREATE TABLE bad (x int)")
    pg.execute("INSERT INTO bad VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.execute("CREATE UNIQUE INDEX CONCURRENTLY bad_x ON bad (x)")
    record = run({"kind": "index_health", "unused_min_bytes": 0})
    found = {(f["check"], f["object"]) for f in record.details["findings"]}
    assert ("invalid_index", "public.bad_x") in found
    assert ("sequence", "public.nearly_done") in found
    assert {("duplicate_index", "public.t_a"), ("duplicate_index", "public.t_a_again")} & found
    assert ("unused_index", "public.t_a_b") in found
    assert not any(obj == "public.t_pkey" for check, obj in found if check == "unused_index")
    assert record.status is RunStatus.FAILED  # a sequence at 96% is critical
    assert "nearly_done" in record.message


def test_advise_and_apply_through_the_cli(pg: Any, postgres_db: str,
                                          write_config: Callable[..., Path]) -> None:
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    pg.execute("CREATE INDEX t_a ON t (a)")
    pg.execute("CREATE INDEX t_a_copy ON t (a)")
    cfg = write_config(f'targets:\n  db: {{url: "{postgres_db}"}}\n')
    listing = run_cli("-c", str(cfg), "advise", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    advice = json.loads(listing.stdout)["results"][0]["details"]["advice"]
    dup = [a for a in advice if a["rule"] == "drop-duplicate-index"]
    assert dup and dup[0]["statement"].startswith("DROP INDEX CONCURRENTLY")
    assert dup[0]["evidence"] and dup[0]["reason"] and dup[0]["severity"]
    chosen = dup[0]["id"]

    dry = run_cli("-c", str(cfg), "advise", "-t", "db", "--apply", chosen, "--dry-run",
                  "-o", "json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert json.loads(dry.stdout)["results"][0]["metrics"] == {"actions_planned": 1,
                                                               "advice_applied": 0}
    indexes = lambda: {r[0] for r in pg.execute(  # noqa: E731
        "SELECT indexname FROM pg_indexes WHERE tablename = 't'").fetchall()}
    assert {"t_a", "t_a_copy"} <= indexes()

    applied = run_cli("-c", str(cfg), "advise", "-t", "db", "--apply", chosen, "-o", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["results"][0]["metrics"]["advice_applied"] == 1
    assert len({"t_a", "t_a_copy"} & indexes()) == 1
    again = run_cli("-c", str(cfg), "advise", "-t", "db", "--apply", chosen)
    assert again.returncode == 1 and "no longer" in again.stdout
    hist = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    assert [h["kind"] for h in hist][:3] == ["apply_advice", "apply_advice", "apply_advice"]


def test_sessions_preset_deletes_expired_django_sessions(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, "
               "session_data text NOT NULL, expire_date timestamptz NOT NULL)")
    pg.execute("CREATE INDEX ON django_session (expire_date)")
    pg.execute("INSERT INTO django_session SELECT md5(g::text), 'x', "
               "now() + (CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END) * interval '1 day' "
               "FROM generate_series(1, 12000) g")
    dry = run({"kind": "sessions"}, dry_run=True)
    assert dry.metrics["rows_matched"] == 6000 and dry.metrics["rows_deleted"] == 0
    record = run({"kind": "sessions", "batch_size": 1000, "target_batch_seconds": 0})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics == {"rows_matched": 6000, "rows_deleted": 6000, "rows_archived": 0,
                              "batches": 6}
    left = pg.execute("SELECT count(*), min(expire_date) > now() FROM django_session").fetchone()
    assert left == (6000, True)


def test_stats_reports_every_section(pg: Any, run: Any) -> None:
    bloated_table(pg, "orders", rows=2000)
    record = run({"kind": "stats"})
    assert record.status is RunStatus.COMPLETED, record.message
    for section in ("database", "top_tables", "top_indexes", "cache", "connections",
                    "long_queries", "blocking", "replication", "slots"):
        assert section in record.details, section
    assert record.metrics["size_bytes"] > 0
    assert any(t["table"] == "orders" for t in record.details["top_tables"])


def test_a_port_with_nothing_listening_fails_cleanly_within_the_timeout(run: Any) -> None:
    t0 = time.monotonic()
    record = run({"kind": "vacuum"}, target=f"postgresql://x:pw@127.0.0.1:{free_port()}/db")
    assert record.status is RunStatus.FAILED
    assert "cannot connect" in record.message and "pw" not in record.message.replace("***", "")
    assert time.monotonic() - t0 < 5


def test_a_connection_error_is_one_line(write_config: Callable[..., Path]) -> None:
    """libpq's 'Connection refused' comes with a second, tab-indented line ('Is the server
    running on that host…'); a run's message is one line, as `check` and `health` show it."""
    cfg = write_config(f"""
        targets:
          db: {{url: "postgresql://x:pw@127.0.0.1:{free_port()}/db", timeout: 2s}}
        tasks:
          t: {{kind: vacuum, target: db}}
        """)
    engine = Engine(load_config(cfg))
    record = engine.run(engine.resolve(["t"])).results[0]
    assert record.status is RunStatus.FAILED
    assert record.message.startswith("cannot connect to postgresql://127.0.0.1:")
    assert "Connection refused Is the server running" in record.message, record.message
    assert "\n" not in record.message and "\t" not in record.message


def test_terminated_session_mid_run_fails_cleanly(pg: Any, run: Any) -> None:
    killer_done = threading.Event()

    def kill_wellkept() -> None:
        for _ in range(100):
            # state: an idle session still shows its last query, and killing it then would
            # hit the next statement instead of the REFRESH. It names the view: the quick
            # mv_other is refreshed first and, on a slow machine, can be caught active too.
            rows = pg.execute("SELECT pid FROM pg_stat_activity WHERE application_name = "
                              "'wellkept' AND datname = current_database() AND state = "
                              "'active' AND query LIKE 'REFRESH%%mv_slow%%'").fetchall()
            if rows:
                pg.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
                break
            time.sleep(0.05)
        killer_done.set()

    pg.execute("CREATE MATERIALIZED VIEW mv_slow AS SELECT 1 AS x FROM pg_sleep(3)")
    pg.execute("CREATE MATERIALIZED VIEW mv_other AS SELECT 2 AS x")
    killer = threading.Thread(target=kill_wellkept)
    killer.start()
    record = run({"kind": "views", "views": ["mv_slow", "mv_other"]})
    killer.join()
    assert record.status is RunStatus.PARTIAL_FAILURE, record.message
    errors = {a["object"]: a.get("error") for a in record.details["actions"]}
    assert "connection" in (errors["public.mv_slow"] or "")
    assert errors["public.mv_other"] is None  # reconnected and went on


def test_a_replica_skips_mutating_tasks_but_answers_read_only_ones(
        run: Any, standby_url: str) -> None:
    with psycopg.connect(standby_url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    for kind in ("vacuum", "analyze", "reindex", "views"):
        record = run({"kind": kind}, target=standby_url)
        assert record.status is RunStatus.SKIPPED, (kind, record.message)
        assert "replica in recovery" in record.message
    stats = run({"kind": "stats"}, target=standby_url)
    assert stats.status is RunStatus.COMPLETED, stats.message
    assert stats.details["database"]["in_recovery"] is True


def test_reindex_never_drops_the_index_of_a_build_in_progress(pg: Any, run: Any,
                                                               postgres_db: str) -> None:
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, x int)")
    pg.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    blocker = psycopg.connect(postgres_db)
    # a writer's lock: CREATE INDEX CONCURRENTLY waits for it ("waiting for writers")
    blocker.execute("LOCK TABLE t IN ROW EXCLUSIVE MODE")
    builder = psycopg.connect(postgres_db, autocommit=True)
    build = threading.Thread(target=lambda: builder.execute(
        "CREATE INDEX CONCURRENTLY t_x_ccnew ON t (x)"))
    build.start()
    try:
        assert wait_for(lambda: pg.execute(
            "SELECT count(*) FROM pg_stat_progress_create_index").fetchone()[0] == 1)
        dry = run({"kind": "reindex", "min_bytes": 0}, dry_run=True)
        assert not any("t_x_ccnew" in a["statement"] for a in dry.details["actions"]), dry
    finally:
        blocker.rollback()
        blocker.close()
        build.join(30)
        builder.close()
    assert pg.execute("SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = 't_x_ccnew'::regclass").fetchone()[0] is True


def test_concurrent_refresh_warns_about_nulls_in_the_key(pg: Any, run: Any) -> None:
    pg.execute("CREATE MATERIALIZED VIEW mv AS SELECT g AS id, CASE WHEN g % 2 = 0 THEN g END "
               "AS k FROM generate_series(1, 100) g")
    pg.execute("CREATE UNIQUE INDEX ON mv (k)")
    pg.execute("ANALYZE mv")
    record = run({"kind": "views"}, dry_run=True)
    (action,) = record.details["actions"]
    assert "CONCURRENTLY" in action["statement"]
    assert "hold NULLs" in action["reason"] and action["evidence"]["nullable_key_columns"] == ["k"]


def test_advice_never_contradicts_itself(pg: Any, postgres_db: str,
                                        write_config: Callable[..., Path]) -> None:
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
    pg.execute("INSERT INTO t SELECT g, g, g FROM generate_series(1, 80000) g")
    pg.execute("CREATE INDEX t_a ON t (a)")
    pg.execute("CREATE INDEX t_a_twin ON t (a)")        # identical to t_a
    pg.execute("CREATE INDEX t_b ON t (b)")             # unused (over 1 MB), no twin
    pg.execute("CREATE TABLE u (x int)")
    pg.execute("INSERT INTO u VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.execute("CREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x)")
    cfg = write_config(f'targets:\n  db: {{url: "{postgres_db}"}}\n')
    out = run_cli("-c", str(cfg), "advise", "-o", "json")
    advice = json.loads(out.stdout)["results"][0]["details"]["advice"]
    by_index: dict[str, list[str]] = {}
    for a in advice:
        by_index.setdefault(a["object"], []).append(a["rule"])
    assert all(len(rules) == 1 for rules in by_index.values()), by_index
    twins = [o for o, r in by_index.items() if o in ("public.t_a", "public.t_a_twin")]
    assert len(twins) == 1 and by_index[twins[0]] == ["drop-duplicate-index"]
    assert by_index["public.t_b"] == ["drop-unused-index"]
    unique = [a for a in advice if a["object"] == "public.u_x"]
    assert unique[0]["rule"] == "fix-invalid-unique-index" and not unique[0]["applicable"]


def _slow_view(pg: Any) -> None:
    """A view whose refresh takes 30 s (created empty, so creating it is instant)."""
    pg.execute("CREATE MATERIALIZED VIEW slow_mv AS SELECT 1 AS x FROM pg_sleep(30) WITH NO DATA")


def _active_refresh(pg: Any) -> bool:
    return bool(pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND application_name = 'wellkept' AND state = "
                           "'active' AND query LIKE 'REFRESH%%'").fetchone()[0])


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_an_interrupted_wellkept_leaves_no_statement_running(
        pg: Any, postgres_db: str, write_config: Callable[..., Path], signal_name: str) -> None:
    import signal
    import subprocess

    from tests.helpers import wellkept_bin

    _slow_view(pg)
    cfg = write_config(f'targets:\n  db: {{url: "{postgres_db}"}}\n'
                       'tasks:\n  refresh: {kind: views, target: db}\n')
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "refresh"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _active_refresh(pg), 15)
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(20)
        # Ctrl-C cancels at once; after kill -9 the server notices the closed client socket
        # (client_connection_check_interval) and aborts the statement within seconds
        assert wait_for(lambda: not _active_refresh(pg), 10), "the REFRESH is still running"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0


def test_cleanup_archives_to_a_table_in_the_same_transaction(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE django_admin_log (id serial PRIMARY KEY, action_time timestamptz "
               "NOT NULL, object_repr varchar(200), change_message text)")
    pg.execute("INSERT INTO django_admin_log (action_time, object_repr, change_message) "
               "SELECT now() - (g % 200) * interval '1 day', 'obj ' || g, 'msg ' || g "
               "FROM generate_series(1, 5000) g")
    expected = {r[0]: r for r in pg.execute(
        "SELECT * FROM django_admin_log WHERE action_time < now() - interval '90 days' "
        "AND object_repr <> 'obj 500'").fetchall()}
    rule = {"kind": "cleanup", "table": "django_admin_log", "date_column": "action_time",
            "retention": "90d", "mode": "archive", "archive_to": "admin_log_archive",
            "where": [{"column": "object_repr", "op": "!=", "value": "obj 500"}],
            "batch_size": 700, "target_batch_seconds": 0}
    dry = run(dict(rule), dry_run=True)
    assert dry.metrics["rows_matched"] == len(expected)
    assert pg.execute("SELECT to_regclass('admin_log_archive')").fetchone()[0] is None
    record = run(dict(rule))
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["rows_deleted"] == record.metrics["rows_archived"] == len(expected)
    archived = {r[0]: r for r in pg.execute("SELECT * FROM admin_log_archive").fetchall()}
    assert archived == expected
    assert pg.execute("SELECT count(*) FROM django_admin_log WHERE object_repr = 'obj 500'"
                      ).fetchone()[0] == 1
    assert pg.execute("SELECT count(*) FROM django_admin_log").fetchone()[0] == \
        5000 - len(expected)
    # made like the source, the archive must not draw on the source's serial sequence: the
    # source stays droppable (a Django migration, a test teardown) without CASCADE
    assert pg.execute("SELECT column_default FROM information_schema.columns WHERE "
                      "table_name = 'admin_log_archive' AND column_name = 'id'"
                      ).fetchone()[0] is None
    pg.execute("DROP TABLE django_admin_log")
    assert pg.execute("SELECT count(*) FROM admin_log_archive").fetchone()[0] == len(expected)


DJANGO_SCHEMA = """
CREATE TABLE django_session (session_key varchar(40) NOT NULL PRIMARY KEY,
    session_data text NOT NULL, expire_date timestamp with time zone NOT NULL);
CREATE INDEX django_session_expire_date_a5c62663 ON django_session (expire_date);
CREATE TABLE django_admin_log (id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
    action_time timestamp with time zone NOT NULL, object_id text NULL,
    object_repr varchar(200) NOT NULL, action_flag smallint NOT NULL CHECK (action_flag >= 0),
    change_message text NOT NULL, content_type_id integer NULL, user_id integer NOT NULL);
"""


def test_django_presets_and_the_seed_rule_shape(pg: Any, run: Any) -> None:
    pg.execute(DJANGO_SCHEMA)
    pg.execute("INSERT INTO django_session SELECT md5(g::text), 'x', now() - (g % 60) * "
               "interval '1 day' FROM generate_series(1, 6000) g")
    pg.execute("INSERT INTO django_admin_log (action_time, object_repr, action_flag, "
               "change_message, user_id) SELECT now() - (g % 365) * interval '1 day', 'o', 1, "
               "'[]', 1 FROM generate_series(1, 3650) g")
    old_sessions = pg.execute("SELECT count(*) FROM django_session "
                              "WHERE expire_date < now() - interval '30 days'").fetchone()[0]
    old_log = {r[0] for r in pg.execute("SELECT id FROM django_admin_log WHERE action_time < "
                                        "now() - interval '90 days'").fetchall()}
    sessions = run({"kind": "cleanup", "preset": "django_sessions"})
    assert sessions.status is RunStatus.COMPLETED, sessions.message
    assert sessions.metrics["rows_deleted"] == old_sessions
    # seed 001's own rule shape, archiving the admin log
    log = run({"kind": "cleanup", "table": "django_admin_log", "date_column": "action_time",
               "retention_days": 90, "cleanup_type": "archive"})
    assert log.status is RunStatus.COMPLETED, log.message
    assert log.metrics["rows_archived"] == len(old_log)
    assert {r[0] for r in pg.execute("SELECT id FROM django_admin_log_archive").fetchall()} \
        == old_log
    assert pg.execute("SELECT count(*) FROM django_admin_log WHERE action_time < now() - "
                      "interval '90 days'").fetchone()[0] == 0


def _slow_deletes(pg: Any, seconds: float) -> None:
    """Make every DELETE on ``ev`` take ``seconds`` longer, so a batch can be caught mid-way."""
    pg.execute("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
               f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$")
    pg.execute("CREATE TRIGGER slow AFTER DELETE ON ev FOR EACH STATEMENT EXECUTE FUNCTION slow()")


def _kill_wellkept_delete_when(pg: Any, ready: Callable[[], bool], within: float,
                               killed: threading.Event) -> None:
    """Terminate wellkept's session while it runs a DELETE, once ``ready()`` holds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'wellkept' AND "
            "datname = current_database() AND state = 'active' AND query LIKE '%%DELETE%%'"
            ).fetchall()
        if rows and ready():
            pg.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
            killed.set()
            return
        time.sleep(0.02)


def test_a_session_terminated_mid_batch_keeps_its_checkpoint_and_resumes(
        pg: Any, run: Any) -> None:
    # never analyzed (and kept so), so the walk is by key and batches are whole thousands
    pg.execute("CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz NOT NULL) "
               "WITH (autovacuum_enabled = off)")
    pg.execute("INSERT INTO ev SELECT g, now() - interval '100 days' FROM "
               "generate_series(1, 20000) g")
    pg.execute("INSERT INTO ev SELECT g, now() FROM generate_series(20001, 20500) g")
    # each batch takes 0.3 s inside its DELETE, so the session can be killed mid-batch
    _slow_deletes(pg, 0.3)
    killed = threading.Event()

    def killer() -> None:  # once a few batches are in
        _kill_wellkept_delete_when(
            pg, lambda: pg.execute("SELECT count(*) FROM ev").fetchone()[0] <= 20500 - 3000,
            20, killed)

    rule = {"kind": "cleanup", "table": "ev", "date_column": "at", "retention": "30d",
            "batch_size": 1000, "target_batch_seconds": 0}
    t = threading.Thread(target=killer)
    t.start()
    first = run(dict(rule))
    t.join()
    assert killed.is_set()
    assert first.status is RunStatus.PARTIAL_FAILURE, first.message
    assert "lost the connection" in first.message
    deleted = first.metrics["rows_deleted"]
    assert deleted >= 3000 and deleted % 1000 == 0  # whole batches only: the killed one rolled back
    assert pg.execute("SELECT count(*) FROM ev").fetchone()[0] == 20500 - deleted
    second = run(dict(rule))
    assert second.status is RunStatus.COMPLETED, second.message
    assert second.details["resumed_from"]["run_id"] and second.details["resumed_from"]["status"] \
        == "partial_failure"
    assert second.metrics["rows_deleted"] == 20000 - deleted
    assert pg.execute("SELECT count(*), min(id) FROM ev").fetchone() == (500, 20001)


def _half_expired(pg: Any, rows: int, expired_every: int = 2) -> set[int]:
    """``ev``: every ``expired_every``-th row 100 days old, on every page; analyzed, so the
    planner knows the share. Returns the ids of the fresh rows."""
    pg.execute("CREATE TABLE ev (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text) "
               "WITH (autovacuum_enabled = off)")
    pg.execute("INSERT INTO ev SELECT g, CASE WHEN g %% %s = 0 THEN now() - interval '100 days' "
               "ELSE now() END, md5(g::text) FROM generate_series(1, %s) g",
               (expired_every, rows))
    pg.execute("ANALYZE ev")
    return {r[0] for r in pg.execute("SELECT id FROM ev WHERE at > now() - interval '1 day'")}


def test_cleanup_walks_heap_pages_when_most_rows_match(pg: Any, run: Any) -> None:
    fresh = _half_expired(pg, 30000)
    rule = {"kind": "cleanup", "table": "ev", "date_column": "at", "retention": "30d",
            "batch_size": 1000, "target_batch_seconds": 0}
    dry = run(dict(rule), dry_run=True)
    assert dry.metrics["rows_matched"] == 15000
    record = run(dict(rule))
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["rows_deleted"] == 15000
    cursor = record.details["last_key"]
    pages = pg.execute("SELECT pg_relation_size('ev') / 8192").fetchone()[0]
    assert isinstance(cursor, dict) and cursor["page"] >= pages, cursor
    assert record.metrics["batches"] >= 10  # about 1000 rows (a few pages) per batch
    assert {r[0] for r in pg.execute("SELECT id FROM ev")} == fresh


def test_cleanup_walks_the_key_when_few_rows_match(pg: Any, run: Any) -> None:
    fresh = _half_expired(pg, 30000, expired_every=50)
    record = run({"kind": "cleanup", "table": "ev", "date_column": "at", "retention": "30d",
                  "batch_size": 100, "target_batch_seconds": 0})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["rows_deleted"] == 600 and record.metrics["batches"] == 6
    assert record.details["last_key"] == 30000
    assert {r[0] for r in pg.execute("SELECT id FROM ev")} == fresh


def test_page_walk_archives_to_a_table_and_resumes_after_a_terminated_session(
        pg: Any, run: Any) -> None:
    fresh = _half_expired(pg, 40000)
    expired = {r[0]: r for r in pg.execute("SELECT * FROM ev WHERE at < now() - "
                                           "interval '30 days'").fetchall()}
    _slow_deletes(pg, 0.2)
    killed = threading.Event()

    def archived_count() -> int:
        if pg.execute("SELECT to_regclass('ev_archive')").fetchone()[0] is None:
            return 0
        return int(pg.execute("SELECT count(*) FROM ev_archive").fetchone()[0])

    def killer() -> None:
        _kill_wellkept_delete_when(pg, lambda: archived_count() >= 3000, 30, killed)

    rule = {"kind": "cleanup", "table": "ev", "date_column": "at", "retention": "30d",
            "mode": "archive", "archive_to": "ev_archive", "batch_size": 1000,
            "target_batch_seconds": 0}
    t = threading.Thread(target=killer)
    t.start()
    first = run(dict(rule))
    t.join()
    assert killed.is_set()
    assert first.status is RunStatus.PARTIAL_FAILURE, first.message
    done = first.metrics["rows_deleted"]
    assert done == first.metrics["rows_archived"] >= 3000
    assert isinstance(first.details["last_key"], dict)
    assert pg.execute("SELECT count(*) FROM ev_archive").fetchone()[0] == done
    second = run(dict(rule))
    assert second.status is RunStatus.COMPLETED, second.message
    assert second.details["resumed_from"]["status"] == "partial_failure"
    assert second.metrics["rows_deleted"] == len(expired) - done
    # it went on from the first run's page, not from the start
    cursor = first.details["last_key"]
    span = -(-1000 // int(cursor["per_page"]))
    pages = pg.execute("SELECT pg_relation_size('ev') / 8192").fetchone()[0]
    assert second.metrics["batches"] <= -(-(pages - cursor["page"]) // span) + 1
    archived = {r[0]: r for r in pg.execute("SELECT * FROM ev_archive").fetchall()}
    assert archived == expired  # every expired row once, with its content
    assert {r[0] for r in pg.execute("SELECT id FROM ev")} == fresh


def test_kill_9_mid_archive_cleanup_of_500k_rows_resumes_exactly(
        pg: Any, postgres_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    import gzip
    import signal
    import subprocess

    from tests.helpers import wellkept_bin

    pg.execute("CREATE TABLE big (id bigint PRIMARY KEY, at timestamptz NOT NULL, v text)")
    pg.execute("INSERT INTO big SELECT g, now() - CASE WHEN g % 10 = 0 THEN interval '1 day' "
               "ELSE interval '100 days' END, md5(g::text) FROM generate_series(1, 500000) g")
    expired = pg.execute("SELECT count(*) FROM big WHERE at < now() - interval '30 days'"
                         ).fetchone()[0]
    cfg = write_config(f"""
        targets:
          db: {{url: "{postgres_db}"}}
        tasks:
          purge: {{kind: cleanup, target: db, table: big, date_column: at, retention: 30d,
                  mode: archive, archive_to: "archive/big-{{date}}.jsonl.gz",
                  batch_size: 2000, target_batch_seconds: 0, sleep: 20ms}}
        """)
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: pg.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                       "application_name = 'wellkept' AND datname = "
                                       "current_database()").fetchone()[0] > 0, 20)
    time.sleep(2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    moved = 500000 - pg.execute("SELECT count(*) FROM big").fetchone()[0]
    assert 0 < moved < expired, moved

    cfg.write_text(cfg.read_text().replace("sleep: 20ms", "sleep: 0s"))
    rerun = run_cli("-c", str(cfg), "run", "purge", "-o", "json", timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads(rerun.stdout)["results"][0]
    assert record["details"]["resumed_from"]["status"] == "orphaned"  # the killed run
    assert record["details"]["recovery"]["strategy"] == "resume"
    assert record["metrics"]["rows_archived"] == expired - moved
    (path,) = (tmp_path / "archive").glob("big-*.jsonl.gz")
    with gzip.open(path, "rt") as fh:
        ids = [json.loads(line)["id"] for line in fh]
    assert len(ids) == len(set(ids)) == expired  # no duplicates, no gaps
    assert pg.execute("SELECT count(*) FROM big WHERE id = ANY(%s)", (ids,)).fetchone()[0] == 0
    assert pg.execute("SELECT count(*), bool_and(at > now() - interval '30 days') FROM big"
                      ).fetchone() == (500000 - expired, True)


def test_no_replicas_means_no_pause_on_postgres(pg: Any, run: Any) -> None:
    bloated_table(pg, "t", rows=100)
    pg.execute("ALTER TABLE t ADD COLUMN at timestamptz NOT NULL DEFAULT now() - interval '9d'")
    record = run({"kind": "cleanup", "table": "t", "date_column": "at", "retention": "1d",
                  "max_replica_lag": "1s"})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["rows_deleted"] == 50
    assert record.details["timings_seconds"]["replica_wait"] < 1


def test_cleanup_archives_to_a_file_before_deleting(pg: Any, run: Any, tmp_path: Path) -> None:
    import gzip

    pg.execute("CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz NOT NULL, "
               "payload jsonb, amount numeric(10,2))")
    pg.execute("INSERT INTO audit SELECT g, now() - (g % 100) * interval '1 day', "
               "jsonb_build_object('n', g), g / 3.0 FROM generate_series(1, 3000) g")
    expected = {r[0] for r in pg.execute("SELECT id FROM audit WHERE at < now() - "
                                         "interval '50 days'").fetchall()}
    record = run({"kind": "cleanup", "table": "audit", "date_column": "at", "retention": "50d",
                  "mode": "archive", "archive_to": str(tmp_path / "{table}.jsonl.gz"),
                  "batch_size": 400})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["rows_archived"] == record.metrics["rows_deleted"] == len(expected)
    with gzip.open(tmp_path / "audit.jsonl.gz", "rt") as fh:
        lines = [json.loads(line) for line in fh]
    assert {r["id"] for r in lines} == expected and len(lines) == len(expected)
    assert isinstance(lines[0]["payload"], dict) and isinstance(lines[0]["amount"], str)
    assert pg.execute("SELECT count(*) FROM audit").fetchone()[0] == 3000 - len(expected)


def test_cleanup_checks_and_quotes_hostile_names(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE victim (id int PRIMARY KEY, at timestamptz NOT NULL)")
    pg.execute("INSERT INTO victim SELECT g, now() - interval '9 days' FROM "
               "generate_series(1, 100) g")
    for table, column in [('victim"; DROP TABLE victim; --', "at"),
                          ("victim; DROP TABLE victim", "at"),
                          ("victim", 'at" < now() OR 1=1; --')]:
        record = run({"kind": "cleanup", "table": table, "date_column": column,
                      "retention": "1d"})
        assert record.status is RunStatus.FAILED, record.message
    assert pg.execute("SELECT count(*) FROM victim").fetchone()[0] == 100
    record = run({"kind": "cleanup", "table": "victim", "date_column": "at", "retention": "1d",
                  "where": [{"column": "id", "op": "<", "value": "5; DROP TABLE victim"}]})
    assert record.status is RunStatus.FAILED  # a value is a parameter, never SQL
    assert pg.execute("SELECT count(*) FROM victim").fetchone()[0] == 100
    pg.execute('CREATE TABLE "odd; ""name""" ("we ird" bigint PRIMARY KEY, "at col" date)')
    pg.execute('INSERT INTO "odd; ""name""" VALUES (1, \'2001-01-01\'), (2, current_date)')
    record = run({"kind": "cleanup", "table": '"odd; ""name"""', "date_column": "at col",
                  "retention": "1d"})
    assert record.status is RunStatus.COMPLETED, record.message
    assert pg.execute('SELECT "we ird" FROM "odd; ""name"""').fetchall() == [(2,)]


def test_a_parquet_archive_is_one_dataset_whatever_each_batch_holds(pg: Any, run: Any,
                                                                    tmp_path: Path) -> None:
    """Each part of a Parquet archive has the same column types: a nullable column that is
    NULL throughout the first batch, text that looks like dates, json of varying shapes.
    Types guessed batch by batch made parts DuckDB could not read as one dataset, and text
    came back as dates."""
    import duckdb

    pg.execute("CREATE TABLE docs (id int PRIMARY KEY, at timestamptz NOT NULL, note text, "
               "meta jsonb, day date, n numeric)")
    pg.execute("""INSERT INTO docs SELECT g, now() - interval '40 days',
                    CASE WHEN g <= 100 THEN NULL WHEN g <= 200 THEN '2024-01-0' || (g % 9 + 1)
                         ELSE 'free text ' || g END,
                    CASE WHEN g <= 100 THEN jsonb_build_object('a', g)
                         WHEN g <= 200 THEN jsonb_build_object('a', 'x', 'b', true)
                         ELSE jsonb_build_array(1, g) END,
                    date '2020-01-01' + g, g / 4.0
                  FROM generate_series(1, 300) g""")
    expected = {r[0]: r for r in pg.execute("SELECT id, note, meta, day, n::text FROM docs")}
    record = run({"kind": "cleanup", "table": "docs", "date_column": "at", "retention": "30d",
                  "mode": "archive", "archive_to": str(tmp_path / "docs.parquet"),
                  "batch_size": 100, "target_batch_seconds": 0})
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.metrics["batches"] == 3
    got = duckdb.sql(f"SELECT id, note, meta::VARCHAR, day, n, \"at\" FROM "
                     f"read_parquet('{tmp_path}/docs.parquet/*.parquet')").fetchall()
    assert len(got) == 300
    for id_, note, meta, day, n, at in got:
        assert (id_, note, json.loads(meta), day, n) == expected[id_]
        assert at.tzinfo is not None


def test_unsafe_where_may_hold_a_percent_sign_on_postgres(pg: Any, run: Any) -> None:
    pg.execute("CREATE TABLE tickets (id int PRIMARY KEY, at timestamptz NOT NULL, s text)")
    pg.execute("INSERT INTO tickets SELECT g, now() - interval '40 days', "
               "CASE WHEN g % 2 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 100) g")
    rule = {"kind": "cleanup", "table": "tickets", "date_column": "at", "retention": "30d",
            "unsafe_where": "s LIKE 'clos%'"}
    assert run(dict(rule), dry_run=True).metrics["rows_matched"] == 50
    record = run(dict(rule))
    assert record.status is RunStatus.COMPLETED, record.message
    assert pg.execute("SELECT s, count(*) FROM tickets GROUP BY s").fetchall() == [("open", 50)]


def test_archive_into_a_table_made_like_the_source_including_all(pg: Any, run: Any) -> None:
    """An archive table the user made with LIKE … INCLUDING ALL keeps identity (GENERATED
    ALWAYS) and generated columns: the copy overrides the identity and leaves the generated
    columns to compute the same values. (The archive wellkept creates has neither.)"""
    pg.execute("CREATE TABLE ev (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
               "at timestamptz NOT NULL, v int, twice int GENERATED ALWAYS AS (v * 2) STORED)")
    pg.execute("INSERT INTO ev (at, v) SELECT now() - interval '40 days', g "
               "FROM generate_series(1, 300) g")
    pg.execute("INSERT INTO ev (at, v) SELECT now(), g FROM generate_series(1, 10) g")
    pg.execute("CREATE TABLE ev_archive (LIKE ev INCLUDING ALL)")
    rule = {"kind": "cleanup", "table": "ev", "date_column": "at", "retention": "30d",
            "mode": "archive", "archive_to": "ev_archive", "batch_size": 100,
            "target_batch_seconds": 0}
    expected = pg.execute("SELECT * FROM ev WHERE at < now() - interval '30 days'").fetchall()
    record = run(dict(rule))  # never analyzed: the key walk
    assert record.status is RunStatus.COMPLETED, record.message
    assert record.details["last_key"] == 300
    pg.execute("INSERT INTO ev (at, v) SELECT now() - interval '40 days', g "
               "FROM generate_series(301, 600) g")
    expected += pg.execute("SELECT * FROM ev WHERE at < now() - interval '30 days'").fetchall()
    pg.execute("ANALYZE ev")
    record = run(dict(rule))  # most rows match: the page walk
    assert record.status is RunStatus.COMPLETED, record.message
    assert isinstance(record.details["last_key"], dict)
    expected.sort()
    assert pg.execute("SELECT * FROM ev_archive ORDER BY id").fetchall() == expected
    assert pg.execute("SELECT count(*) FROM ev").fetchone()[0] == 10
