"""Bounded, read-only PostgreSQL catalog queries behind wellkept's health, stats and bloat checks.

Every query goes through :func:`bounded`: its own short ``READ ONLY`` transaction with
``SET LOCAL statement_timeout`` and ``SET LOCAL lock_timeout``, so a slow or blocked catalog query
fails alone, leaves no setting behind on the session and cannot write. Every listing is top-N
(``LIMIT``) and computed in one statement over ``pg_class``/``pg_stat_*`` joins (never
``information_schema``, never one query per relation), so a database with 10,000 tables stays
fast. The multi-section functions return, per section, either the data or ``{"error": msg}``.
The connection must be a psycopg 3 connection in autocommit mode.

Bloat estimate (``table_bloat``/``index_bloat``): the check_postgres / ioguix method, catalog only,
no heap scan. A heap tuple is ``4`` (line pointer) ``+ MAXALIGN(23 + null bitmap) +
MAXALIGN(sum((1 - null_frac) * avg_width))`` bytes from ``pg_stats``; a page holds
``floor((block_size - 24) * fillfactor / tuple)`` of them (at most ``MaxHeapTuplesPerPage``), TOAST
adds ``toast tuples / 4`` pages, and bloat is the pages beyond ``reltuples`` worth of tuples. A
btree leaf tuple is ``4 + MAXALIGN(8 [+4 bitmap]) + MAXALIGN(data)`` on ``block_size - 24 - 16``
bytes at the index fillfactor (90 by default), plus the meta page. Limits, all known: it is only
as fresh as the last ANALYZE/VACUUM (``reltuples``/``relpages``/``pg_stats``; TOAST pages are
counted by VACUUM only); padding between columns of different alignment counts as bloat (a few
points, up to ~10 on tables of narrow mixed-width columns); ``name`` columns and TOASTed values
make it less reliable; btree deduplication (PG13+) makes indexes with many duplicates look
smaller than expected (reported as 0 bloat); internal btree pages are ignored; tiny relations
show large percentages of few bytes (results are ordered by bytes, so they sort last). Relations
never analyzed (``reltuples = -1``) or missing statistics for a variable-width column are left
out rather than guessed. :func:`exact_bloat` confirms the worst few with
``pgstattuple_approx``/``pgstatindex`` under a time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.abc import Params
from psycopg.rows import dict_row

from wellkept.errors import ConnectorError, Unavailable

Row = dict[str, Any]
Conn = psycopg.Connection[Any]
Query = str | pgsql.SQL | pgsql.Composed

#: schemas whose relations are never reported (catalogs, TOAST, the SQL-standard views)
_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'"
#: MAXALIGN is not exposed in the catalog; every 64-bit platform uses 8 (the ioguix test)
_CONSTS = ("SELECT current_setting('block_size')::numeric AS bs, (CASE WHEN version() ~ "
           "'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64' THEN 8 ELSE 4 END)::numeric AS ma")


def _secs(since: str, now: str = "now() - ") -> str:
    return f"round(extract(epoch FROM {now}{since})::numeric, 1)"


def _fillfactor(column: str, default: int) -> str:
    return (f"coalesce((SELECT substring(o FROM '^fillfactor=([0-9]+)$')::int "
            f"FROM unnest({column}) AS o WHERE o LIKE 'fillfactor=%%' LIMIT 1), {default})")


# --- the one way to run a catalog query ---------------------------------------------------------


def bounded(conn: Conn, sql: Query, params: Params | None = None, *,
            timeout_ms: int = 5000) -> list[Row]:
    """Run one read-only query in its own short transaction, with statement and lock timeouts.

    Returns the rows as plain dicts of JSON-serialisable values. Raises :class:`Unavailable`
    when a timeout cancelled the query and :class:`ConnectorError` for any other database error;
    either way the transaction is rolled back and the connection stays usable."""
    return _run(conn, sql, params, timeout_ms, read_only=True)


def _run(conn: Conn, sql: Query, params: Params | None, timeout_ms: int, *,
         read_only: bool) -> list[Row]:
    if not conn.autocommit:
        raise ConnectorError("pg_catalog needs a psycopg connection opened with autocommit=True")
    ms = max(1, int(timeout_ms))
    # lock_timeout is shorter, so a wait on a lock is reported as what it is
    setup = (f"SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {max(1, ms * 4 // 5)}")
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(("SET TRANSACTION READ ONLY; " if read_only else "") + setup)
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
        raise Unavailable(f"{_message(exc)} (after {ms} ms)") from exc
    except psycopg.Error as exc:
        raise ConnectorError(_message(exc)) from exc
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def _message(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """Turn what psycopg loads into JSON-serialisable values (ISO strings, ints, floats)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):  # int without a scale (sums), float with one, None for NaN
        exponent = value.as_tuple().exponent
        return None if isinstance(exponent, str) else int(value) if exponent >= 0 else float(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)  # inet, uuid, pg_lsn and friends


def _sections(specs: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run each section on its own; a database error in one becomes that section's error."""
    out: dict[str, Any] = {}
    for name, run in specs.items():
        try:
            out[name] = run()
        except ConnectorError as exc:
            out[name] = {"error": str(exc)}
    return out


def _one(rows: list[Row]) -> Row:
    return rows[0] if rows else {}


# --- database_stats -----------------------------------------------------------------------------

_DATABASE = """SELECT current_database() AS name,
       pg_database_size(current_database()) AS size_bytes, pg_is_in_recovery() AS in_recovery,
       current_setting('server_version') AS version, d.stats_reset,
       d.numbackends AS backends
FROM pg_stat_database d WHERE d.datname = current_database()"""

# Sizing takes a brief AccessShareLock per relation: a table held by DDL makes this section
# wait, then time out alone. It is one statement whatever the number of tables.
_TOP_TABLES = f"""SELECT n.nspname AS schema, c.relname AS "table", big.total AS total_bytes,
       pg_table_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes,
       s.n_live_tup AS live_tuples, s.n_dead_tup AS dead_tuples, s.seq_scan, s.idx_scan,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
FROM (SELECT c.oid, pg_total_relation_size(c.oid) AS total
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm') AND {_USER}
      ORDER BY total DESC NULLS LAST LIMIT %(top)s) AS big
JOIN pg_class c ON c.oid = big.oid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
ORDER BY big.total DESC NULLS LAST, 1, 2"""

_TOP_INDEXES = f"""SELECT n.nspname AS schema, t.relname AS "table", c.relname AS "index",
       big.bytes, s.idx_scan, i.indisunique AS "unique", i.indisprimary AS "primary"
FROM (SELECT c.oid, pg_relation_size(c.oid) AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'i' AND {_USER}
      ORDER BY bytes DESC NULLS LAST LIMIT %(top)s) AS big
JOIN pg_class c ON c.oid = big.oid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = c.oid
ORDER BY big.bytes DESC NULLS LAST, 1, 2, 3"""

_CACHE = """SELECT CASE WHEN sum(heap_blks_hit + heap_blks_read) > 0 THEN round(
         100 * sum(heap_blks_hit) / sum(heap_blks_hit + heap_blks_read), 1) END AS heap_hit_ratio,
       CASE WHEN sum(idx_blks_hit + idx_blks_read) > 0 THEN round(
         100 * sum(idx_blks_hit) / sum(idx_blks_hit + idx_blks_read), 1) END AS index_hit_ratio
FROM pg_statio_user_tables"""

_CONNECTIONS = """SELECT coalesce(json_object_agg(state, n), '{}') AS by_state,
       sum(n)::int AS total, m.max_connections,
       round(100.0 * sum(n) / m.max_connections, 1) AS percent
FROM (SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' GROUP BY 1) AS a
CROSS JOIN (SELECT current_setting('max_connections')::int AS max_connections) AS m
GROUP BY m.max_connections"""

_LONG_QUERIES = f"""SELECT pid, datname AS database, state, left(query, 200) AS query,
       {_secs("coalesce(query_start, xact_start)")} AS seconds, application_name
FROM pg_stat_activity
WHERE state IS NOT NULL AND state <> 'idle' AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND now() - coalesce(query_start, xact_start) > make_interval(secs => %(seconds)s)
ORDER BY seconds DESC LIMIT %(top)s"""

# pg_blocking_pids() is costly, so it only runs for backends that wait on a lock.
_BLOCKING = f"""SELECT w.pid AS blocked_pid, b.pid AS blocking_pid,
       left(w.query, 200) AS blocked_query, left(b.query, 200) AS blocking_query,
       {_secs("coalesce(w.query_start, w.xact_start)")} AS seconds
FROM (SELECT pid, query, query_start, xact_start, pg_blocking_pids(pid) AS blockers
      FROM pg_stat_activity WHERE wait_event_type = 'Lock') AS w
CROSS JOIN LATERAL unnest(w.blockers) AS bp(pid)
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid
ORDER BY seconds DESC NULLS LAST, blocked_pid LIMIT %(top)s"""

# On a replica: 0 when everything received is replayed (an idle primary sends nothing, so the
# replay timestamp alone would grow forever), else the age of the last replayed transaction.
_REPLICATION = f"""SELECT pg_is_in_recovery() AS is_replica,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE {_secs("pg_last_xact_replay_timestamp()")} END AS lag_seconds,
       (SELECT coalesce(json_agg(r), '[]') FROM (
          SELECT pid, application_name, client_addr, state, sync_state,
                 {_secs("write_lag", "")} AS write_lag_seconds,
                 {_secs("flush_lag", "")} AS flush_lag_seconds,
                 {_secs("replay_lag", "")} AS replay_lag_seconds
          FROM pg_stat_replication ORDER BY replay_lag DESC NULLS LAST, pid LIMIT %(top)s) AS r)
         AS replicas"""

_SLOTS = """SELECT slot_name, slot_type, database, active,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                       ELSE pg_current_wal_lsn() END, restart_lsn)::bigint AS wal_retained_bytes
FROM pg_replication_slots ORDER BY wal_retained_bytes DESC NULLS LAST, slot_name LIMIT %(top)s"""


def database_stats(conn: Conn, *, top: int = 10, long_query_seconds: float = 60.0,
                   timeout_ms: int = 5000) -> dict[str, Any]:
    """Size, largest tables and indexes, cache, connections, long queries, locks, replication."""

    def q(sql: str) -> list[Row]:
        return bounded(conn, sql, {"top": top, "seconds": long_query_seconds},
                       timeout_ms=timeout_ms)

    return _sections({
        "database": lambda: _one(q(_DATABASE)),
        "top_tables": lambda: q(_TOP_TABLES),
        "top_indexes": lambda: q(_TOP_INDEXES),
        "cache": lambda: _one(q(_CACHE)),
        "connections": lambda: _one(q(_CONNECTIONS)),
        "long_queries": lambda: q(_LONG_QUERIES),
        "blocking": lambda: q(_BLOCKING),
        "replication": lambda: _one(q(_REPLICATION)),
        "slots": lambda: q(_SLOTS),
    })


# --- bloat estimates ----------------------------------------------------------------------------

# Widths come from pg_stats; a fixed-width column without statistics uses its type's length, a
# variable-width one makes the relation "incomplete", and it is left out rather than guessed.
_WIDTH = ("coalesce(s.null_frac, 0) AS null_frac, "
          "coalesce(s.avg_width, CASE WHEN t.typlen > 0 THEN t.typlen END) AS width")
_DATA = ("sum((1 - null_frac) * width)::numeric AS data, "
         "bool_and(width IS NOT NULL) AS complete")


def _worst(key: str, names: str, extra: str = "") -> str:
    """The top of ``est(<key>, pages, expected, ...)`` by bloat bytes, from ``%(min_bytes)s``."""
    return f"""worst AS (
  SELECT est.*, x.extra FROM est CROSS JOIN k
  CROSS JOIN LATERAL (SELECT greatest(pages - expected, 0) AS extra) AS x
  WHERE x.extra * k.bs >= %(min_bytes)s
  ORDER BY x.extra DESC, x.extra / pages DESC, {key} LIMIT %(limit)s)
SELECT n.nspname AS schema, {names}, (w.pages * k.bs)::bigint AS bytes,
       (w.expected * k.bs)::bigint AS expected_bytes, (w.extra * k.bs)::bigint AS bloat_bytes,
       round(100 * w.extra / w.pages, 1) AS bloat_percent, {extra}true AS estimated
FROM worst w CROSS JOIN k"""


_TABLE_WORST = _worst("oid", 'c.relname AS "table"',
                      "coalesce(s.n_live_tup, w.reltuples::bigint) AS live_tuples, "
                      "s.n_dead_tup AS dead_tuples, ")
_INDEX_WORST = _worst("indexrelid", 't.relname AS "table", c.relname AS "index"')

_TABLE_BLOAT = f"""WITH k AS ({_CONSTS}),
cols AS (
  SELECT c.oid, c.reltuples, c.relpages, c.reltoastrelid, c.reloptions, {_WIDTH}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
       AND s.attname = a.attname AND NOT s.inherited
  WHERE c.relkind IN ('r', 'm') AND {_USER} AND c.reltuples >= 0 AND c.relpages > 0),
tbl AS (
  SELECT oid, reltuples, relpages, reltoastrelid, {_fillfactor('reloptions', 100)} AS ff,
         23 + CASE WHEN max(null_frac) > 0 THEN (7 + count(*)) / 8 ELSE 0 END AS hdr, {_DATA}
  FROM cols GROUP BY oid, reltuples, relpages, reltoastrelid, reloptions),
est AS (
  SELECT tbl.oid, tbl.reltuples, (tbl.relpages + coalesce(toast.relpages, 0))::numeric AS pages,
         ceil(tbl.reltuples::numeric / least(floor((k.bs - 24) / 28), greatest(1, floor(
           (k.bs - 24) * tbl.ff / 100.0
           / (4 + ceil(tbl.hdr / k.ma) * k.ma + ceil(tbl.data / k.ma) * k.ma)))))
         + CASE WHEN toast.reltuples >= 0 THEN ceil(toast.reltuples::numeric / 4)
                ELSE coalesce(toast.relpages, 0) END AS expected
  FROM tbl CROSS JOIN k LEFT JOIN pg_class toast ON toast.oid = tbl.reltoastrelid
  WHERE tbl.complete),
{_TABLE_WORST}
JOIN pg_class c ON c.oid = w.oid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = w.oid
ORDER BY w.extra DESC, w.extra / w.pages DESC, 1, 2"""

# A leaf tuple: line pointer + IndexTupleData (8, +4 for the null bitmap) + data, MAXALIGNed;
# a page: block_size - page header (24) - btree special space (16); plus the meta page.
# Expression columns have their statistics under the index's name.
_INDEX_BLOAT = f"""WITH k AS ({_CONSTS}),
idx AS (
  SELECT i.indexrelid, i.indrelid, ci.relname AS idxname, ct.relname AS tblname, n.nspname,
         ci.reltuples, ci.relpages, {_fillfactor('ci.reloptions', 90)} AS ff, key.attnum, key.attpos
  FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class ct ON ct.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ci.relnamespace
  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS key(attnum, attpos)
  WHERE ci.relkind = 'i' AND ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
    AND i.indisvalid AND ci.relpages > 0 AND ci.reltuples >= 0 AND {_USER}),
cols AS (
  SELECT idx.indexrelid, idx.reltuples, idx.relpages, idx.ff, {_WIDTH}
  FROM idx JOIN pg_attribute ia ON ia.attrelid = idx.indexrelid AND ia.attnum = idx.attpos
  JOIN pg_type t ON t.oid = ia.atttypid
  LEFT JOIN pg_attribute ta ON idx.attnum > 0 AND ta.attrelid = idx.indrelid
       AND ta.attnum = idx.attnum
  LEFT JOIN pg_stats s ON s.schemaname = idx.nspname AND NOT s.inherited
       AND s.tablename = CASE WHEN idx.attnum > 0 THEN idx.tblname ELSE idx.idxname END
       AND s.attname = CASE WHEN idx.attnum > 0 THEN ta.attname ELSE ia.attname END),
per AS (
  SELECT indexrelid, reltuples, relpages, ff,
         CASE WHEN max(null_frac) > 0 THEN 12 ELSE 8 END AS hdr, {_DATA}
  FROM cols GROUP BY indexrelid, reltuples, relpages, ff),
est AS (
  SELECT indexrelid, relpages::numeric AS pages,
         1 + ceil(reltuples::numeric / greatest(1, floor((k.bs - 24 - 16) * ff / 100.0
             / (4 + ceil(hdr / k.ma) * k.ma + ceil(data / k.ma) * k.ma)))) AS expected
  FROM per CROSS JOIN k WHERE complete),
{_INDEX_WORST}
JOIN pg_class c ON c.oid = w.indexrelid JOIN pg_index i ON i.indexrelid = w.indexrelid
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY w.extra DESC, w.extra / w.pages DESC, 1, 2, 3"""


def table_bloat(conn: Conn, *, limit: int = 20, min_bytes: int = 0,
                timeout_ms: int = 10000) -> list[Row]:
    """Estimated table bloat from catalog statistics (no heap scan), worst first.

    ``min_bytes`` leaves out tables with less estimated bloat than that."""
    return bounded(conn, _TABLE_BLOAT, {"limit": limit, "min_bytes": min_bytes},
                   timeout_ms=timeout_ms)


def index_bloat(conn: Conn, *, limit: int = 20, min_bytes: int = 0,
                timeout_ms: int = 10000) -> list[Row]:
    """Estimated btree index bloat from catalog statistics (no index scan), worst first."""
    return bounded(conn, _INDEX_BLOAT, {"limit": limit, "min_bytes": min_bytes},
                   timeout_ms=timeout_ms)


# --- exact bloat (pgstattuple) ------------------------------------------------------------------

_EXTENSION = """SELECT n.nspname AS schema FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgstattuple'"""

_RESOLVE = f"""SELECT r.ord, c.oid::bigint AS oid, c.relkind::text AS relkind, am.amname,
       nullif({_fillfactor('c.reloptions', 0)}, 0) AS fillfactor
FROM unnest(%(schemas)s::text[], %(names)s::text[]) WITH ORDINALITY AS r(nsp, rel, ord)
LEFT JOIN pg_namespace n ON n.nspname = r.nsp
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel
LEFT JOIN pg_am am ON am.oid = c.relam ORDER BY r.ord"""

# The measured bloat, comparable with the estimate: free space kept by a fillfactor below 100
# is intended; a btree is expected to hold its leaf pages packed to the fillfactor, plus its
# internal pages and the meta page.
_SCANS = {"table": """SELECT 'pgstattuple_approx' AS method, p.table_len AS bytes,
       round(w.pct::numeric, 1) AS bloat_percent, (p.table_len * w.pct / 100)::bigint
         AS bloat_bytes,
       p.approx_free_percent AS free_percent, p.dead_tuple_percent, p.scanned_percent,
       p.approx_tuple_count AS live_tuples, p.dead_tuple_count AS dead_tuples
FROM {}.pgstattuple_approx(%(oid)s::oid::regclass) AS p CROSS JOIN LATERAL (SELECT greatest(0,
  p.approx_free_percent + p.dead_tuple_percent - (100 - coalesce(%(ff)s, 100))) AS pct) AS w""",
          "index": """SELECT 'pgstatindex' AS method, p.index_size AS bytes,
       round(w.pct::numeric, 1) AS bloat_percent, (p.index_size * w.pct / 100)::bigint
         AS bloat_bytes, p.avg_leaf_density, p.leaf_fragmentation, p.leaf_pages,
       p.empty_pages, p.deleted_pages
FROM {}.pgstatindex(%(oid)s::oid::regclass) AS p
CROSS JOIN (SELECT current_setting('block_size')::numeric AS bs) AS k
CROSS JOIN LATERAL (SELECT p.index_size / k.bs AS pages) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN x.pages > 0 THEN 100 * greatest(0, x.pages - 1
  - p.internal_pages - p.leaf_pages * least(1, coalesce(nullif(p.avg_leaf_density, 'NaN'), 0)
  / coalesce(%(ff)s, 90))) / x.pages ELSE 0 END AS pct) AS w"""}


def _ensure_pgstattuple(conn: Conn, install: bool) -> tuple[str | None, bool, str | None]:
    """The extension's schema, whether this call installed it, and the error if any."""
    found = bounded(conn, _EXTENSION)
    if found:
        return str(found[0]["schema"]), False, None
    db = _one(bounded(conn, "SELECT current_database() AS db")).get("db")
    if not install:
        return None, False, (f"pgstattuple is not installed in database {db!r}; run CREATE "
                             "EXTENSION pgstattuple as a superuser, or set "
                             "install_extension: true on the bloat task")
    try:
        _run(conn, "CREATE EXTENSION IF NOT EXISTS pgstattuple", None, 30000, read_only=False)
    except ConnectorError as exc:
        return None, False, f"cannot install pgstattuple in database {db!r}: {exc}"
    found = bounded(conn, _EXTENSION)
    return (str(found[0]["schema"]) if found else None), True, None


def _unfit(kind: str, rel: Row) -> str | None:
    """Why a relation cannot be measured, or None when it can."""
    if kind not in ("table", "index"):
        return f"unknown kind {kind!r} (expected 'table' or 'index')"
    if rel["oid"] is None:
        return "no such relation"
    if kind == "table":
        return None if rel["relkind"] in ("r", "m", "t") else "not a table"
    return None if (rel["relkind"], rel["amname"]) == ("i", "btree") else "not a btree index"


def exact_bloat(conn: Conn, relations: list[tuple[str, str, str]], *,
                budget_seconds: float = 30.0, install_extension: bool = False) -> dict[str, Any]:
    """Measure bloat of a few relations with pgstattuple, within a time budget.

    ``relations`` are ``(kind, schema, name)`` with kind ``"table"`` (``pgstattuple_approx``:
    reads only the pages the visibility map does not mark all-visible) or ``"index"``
    (``pgstatindex``: reads the whole btree). Each scan gets the budget left as its statement
    timeout; once the budget is spent (or a scan was cancelled by that timeout) the rest are
    reported in ``skipped`` with the reason, as are relations that do not exist or have the
    wrong kind. ``installed`` tells whether this call ran ``CREATE EXTENSION`` (only with
    ``install_extension=True``)."""
    deadline = time.monotonic() + budget_seconds
    try:
        schema, installed, error = _ensure_pgstattuple(conn, install_extension)
        if error or schema is None:
            return {"error": error or "pgstattuple is not installed"}
        found = bounded(conn, _RESOLVE, {"schemas": [r[1] for r in relations],
                                         "names": [r[2] for r in relations]})
    except ConnectorError as exc:
        return {"error": f"cannot look up pgstattuple or the relations: {exc}"}
    results: list[Row] = []
    skipped: list[Row] = []
    for (kind, nsp, name), rel in zip(relations, found, strict=True):
        item: Row = {"kind": kind, "schema": nsp, "name": name}
        remaining = deadline - time.monotonic()
        reason = "time budget spent" if remaining <= 0 else _unfit(kind, rel)
        if reason:
            skipped.append({**item, "reason": reason})
            continue
        scan = pgsql.SQL(_SCANS[kind]).format(pgsql.Identifier(schema))
        started = time.monotonic()
        try:
            rows = bounded(conn, scan, {"oid": rel["oid"], "ff": rel["fillfactor"]},
                           timeout_ms=max(1, math.ceil(remaining * 1000)))
        except Unavailable as exc:
            # Cancelled by its timeout (the budget left): the budget is spent for the rest too.
            skipped.append({**item, "reason": f"time budget spent: {exc}"})
            deadline = time.monotonic()
            continue
        except ConnectorError as exc:
            skipped.append({**item, "reason": str(exc)})
            continue
        results.append({**item, **rows[0], "seconds": round(time.monotonic() - started, 3)})
    return {"results": results, "skipped": skipped, "installed": installed}


# --- index_health -------------------------------------------------------------------------------

# A build in progress shows as an INVALID index too: only one concurrent build runs per table,
# and REINDEX CONCURRENTLY reports the old index while its _ccnew copy is the invalid one.
_INVALID = """SELECT n.nspname AS schema, t.relname AS "table", c.relname AS "index",
       pg_relation_size(c.oid) AS bytes, c.relname ~ '_cc(new|old)[0-9]*$' AS leftover,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND p.relid = i.indrelid
                 AND (p.index_relid IN (0, i.indexrelid) OR p.command = 'REINDEX CONCURRENTLY'))
         AS building,
       pg_get_indexdef(c.oid) AS definition, i.indisunique AS "unique"
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
ORDER BY bytes DESC NULLS LAST, 1, 2, 3 LIMIT %(top)s"""

# Indexes that enforce something (primary key, unique, exclusion, replica identity) are never
# "unused", whatever their scan count.
_UNUSED = f"""SELECT n.nspname AS schema, t.relname AS "table", c.relname AS "index",
       u.bytes, u.idx_scan, d.stats_reset, pg_get_indexdef(c.oid) AS definition,
       round({_secs("d.stats_reset")} / 86400, 1) AS days_since_stats_reset
FROM (SELECT s.indexrelid, s.idx_scan, pg_relation_size(s.indexrelid) AS bytes
      FROM pg_stat_all_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
      JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
        AND NOT i.indisexclusion AND NOT i.indisreplident AND c.relkind = 'i' AND {_USER}
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                        AND k.contype IN ('p', 'u', 'x'))) AS u
JOIN pg_index i ON i.indexrelid = u.indexrelid JOIN pg_class c ON c.oid = u.indexrelid
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_database d ON d.datname = current_database()
WHERE u.bytes >= %(min_bytes)s
ORDER BY u.bytes DESC, 1, 2, 3 LIMIT %(top)s"""

# Rank: 2 primary key, 1 unique or exclusion, 0 plain. Of two identical indexes the lower rank
# (then the newer) is redundant; a prefix is redundant only when it is plain. Columns, operator
# classes, collations and options are compared position by position (1-based arrays).
_DUPLICATES = f"""WITH ix AS (
  SELECT i.indexrelid AS oid, i.indrelid, c.relam, i.indnkeyatts,
         string_to_array(i.indkey::text, ' ')::int[] AS cols,
         (string_to_array(i.indkey::text, ' ')::int[])[1:i.indnkeyatts] AS keys,
         string_to_array(i.indclass::text, ' ')::oid[] AS opclasses,
         string_to_array(i.indcollation::text, ' ')::oid[] AS collations,
         string_to_array(i.indoption::text, ' ')::int[] AS options,
         pg_get_expr(i.indexprs, i.indrelid) AS exprs, pg_get_expr(i.indpred, i.indrelid) AS pred,
         CASE WHEN i.indisprimary THEN 2 WHEN i.indisunique OR i.indisexclusion THEN 1 ELSE 0 END
           AS rank
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE i.indisvalid AND c.relkind = 'i' AND {_USER}),
pairs AS (
  SELECT a.oid AS redundant, b.oid AS covering, m.identical
  FROM ix a JOIN ix b ON b.indrelid = a.indrelid AND b.oid <> a.oid AND b.relam = a.relam
       AND b.pred IS NOT DISTINCT FROM a.pred
  CROSS JOIN LATERAL (SELECT a.cols = b.cols AND a.indnkeyatts = b.indnkeyatts
         AND a.opclasses = b.opclasses AND a.collations = b.collations
         AND a.options = b.options AND a.exprs IS NOT DISTINCT FROM b.exprs AS identical) AS m
  WHERE (m.identical AND (a.rank < b.rank OR (a.rank = b.rank AND a.oid > b.oid)))
     OR (NOT m.identical AND a.rank = 0 AND a.exprs IS NULL AND b.exprs IS NULL
         AND cardinality(a.cols) <= cardinality(b.keys)
         AND a.cols = b.keys[1:cardinality(a.cols)]
         AND a.opclasses = b.opclasses[1:a.indnkeyatts]
         AND a.collations = b.collations[1:a.indnkeyatts]
         AND a.options = b.options[1:a.indnkeyatts])),
best AS (
  SELECT DISTINCT ON (redundant) redundant, covering, identical
  FROM pairs ORDER BY redundant, identical DESC, covering)
SELECT n.nspname AS schema, t.relname AS "table", c.relname AS "index", cb.relname AS covered_by,
       CASE WHEN best.identical THEN 'identical' ELSE 'prefix' END AS reason,
       pg_relation_size(c.oid) AS bytes, pg_get_indexdef(c.oid) AS definition,
       pg_get_indexdef(cb.oid) AS covered_by_definition
FROM best JOIN pg_class c ON c.oid = best.redundant JOIN pg_class cb ON cb.oid = best.covering
JOIN pg_index i ON i.indexrelid = best.redundant JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY bytes DESC NULLS LAST, 1, 2, 3 LIMIT %(top)s"""

# The columns a sequence feeds: those owning it (serial, identity, OWNED BY) and those whose
# DEFAULT calls nextval() on it, both found through pg_depend (never by parsing default text).
# The limit is the smaller of the sequence's own and the narrowest column type's. This reads
# pg_sequence with pg_sequence_last_value(), as the pg_sequences view does, because joining the
# view gets a nested-loop plan that takes seconds with 10,000 sequences.
_SEQUENCES = """WITH used AS (
  SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS attnum, true AS owner FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum, false FROM pg_depend d
  JOIN pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass),
cols AS (
  SELECT DISTINCT ON (u.seq) u.seq, format('%%I.%%I.%%I', n.nspname, c.relname, a.attname) AS col,
         format_type(a.atttypid, a.atttypmod) AS col_type, b.colmax, b.colmin
  FROM used u JOIN pg_class sq ON sq.oid = u.seq AND sq.relkind = 'S'
  JOIN pg_class c ON c.oid = u.rel JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.attnum AND NOT a.attisdropped
  JOIN pg_type ty ON ty.oid = a.atttypid
  CROSS JOIN LATERAL (SELECT coalesce(nullif(ty.typbasetype, 0), ty.oid) AS base) AS bt
  CROSS JOIN LATERAL (SELECT
      CASE bt.base WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647 END
        AS colmax,
      CASE bt.base WHEN 'int2'::regtype THEN -32768 WHEN 'int4'::regtype THEN -2147483648 END
        AS colmin) AS b
  ORDER BY u.seq, b.colmax NULLS LAST, b.colmin DESC NULLS LAST, u.owner DESC, 2),
seqs AS (
  SELECT n.nspname AS schemaname, c.relname AS sequencename, v.last_value, s.seqmax, s.seqcycle,
         format_type(s.seqtypid, NULL) AS data_type, cols.col, cols.col_type,
         CASE WHEN s.seqincrement > 0 THEN least(s.seqmax, cols.colmax)
              ELSE greatest(s.seqmin, cols.colmin) END AS lim,
         CASE WHEN s.seqincrement > 0 THEN cols.colmax < s.seqmax
              ELSE cols.colmin > s.seqmin END AS by_column
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN cols ON cols.seq = c.oid
  CROSS JOIN LATERAL (SELECT CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE')
                                   THEN pg_sequence_last_value(c.oid) END AS last_value) AS v
  WHERE NOT pg_is_other_temp_schema(n.oid) AND v.last_value IS NOT NULL)
SELECT schemaname AS schema, sequencename AS sequence, data_type, last_value, lim AS max_value,
       seqmax AS sequence_max_value, CASE WHEN by_column THEN 'column' ELSE 'sequence' END
         AS limited_by, col AS "column", col_type AS column_type, seqcycle AS cycle,
       round(100.0 * last_value / lim, 1) AS percent_used
FROM seqs WHERE lim <> 0 AND 100.0 * last_value / lim >= %(percent)s
ORDER BY percent_used DESC, 1, 2 LIMIT %(top)s"""


def _toward_wraparound(age: str) -> str:
    return (f"2147483648 - {age} AS remaining, round(100.0 * {age} / 2147483648, 1) AS percent, "
            f"round(100.0 * {age} / 2147483648, 1) >= %(percent)s AS over_threshold")


_WRAP_DATABASES = f"""SELECT datname, age(datfrozenxid) AS age,
       {_toward_wraparound("age(datfrozenxid)")},
       current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age
FROM pg_database ORDER BY age DESC, datname LIMIT %(top)s"""

_WRAP_TABLES = f"""SELECT n.nspname AS schema, c.relname AS "table",
       age(c.relfrozenxid) AS table_age, age(t.relfrozenxid) AS toast_age, w.age,
       {_toward_wraparound("w.age")}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
CROSS JOIN LATERAL (SELECT greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS age) AS w
WHERE c.relkind IN ('r', 'm') AND c.relfrozenxid <> '0'::xid
ORDER BY w.age DESC, 1, 2 LIMIT %(top)s"""

_IDLE_IN_TX = f"""SELECT pid, datname AS database, usename AS "user", application_name, state,
       {_secs("state_change")} AS seconds, {_secs("xact_start")} AS transaction_seconds,
       left(query, 200) AS query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND pid <> pg_backend_pid() AND now() - state_change > make_interval(secs => %(seconds)s)
ORDER BY seconds DESC, pid LIMIT %(top)s"""


def index_health(conn: Conn, *, unused_min_bytes: int = 0, sequence_percent: float = 85.0,
                 wraparound_percent: float = 50.0, idle_tx_seconds: float = 60.0,
                 timeout_ms: int = 5000, top: int = 20) -> dict[str, Any]:
    """Invalid, unused and duplicate indexes, sequences near their limit, XID wraparound and
    sessions idle in a transaction; each listing holds at most ``top`` rows."""

    def q(sql: str, **params: Any) -> list[Row]:
        return bounded(conn, sql, {"top": top, **params}, timeout_ms=timeout_ms)

    return _sections({
        "invalid_indexes": lambda: q(_INVALID),
        "unused_indexes": lambda: q(_UNUSED, min_bytes=unused_min_bytes),
        "duplicate_indexes": lambda: q(_DUPLICATES),
        "sequences": lambda: q(_SEQUENCES, percent=sequence_percent),
        "wraparound": lambda: {"databases": q(_WRAP_DATABASES, percent=wraparound_percent),
                               "tables": q(_WRAP_TABLES, percent=wraparound_percent)},
        "idle_in_transaction": lambda: q(_IDLE_IN_TX, seconds=idle_tx_seconds),
    })
