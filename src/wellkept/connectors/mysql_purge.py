"""MySQL/MariaDB batched deletes: keyset batches on a single-column key, one short transaction
each.

The table and column are found in information_schema (in the connection's database) and quoted
with backticks; values travel as parameters. MySQL refuses ``IN (SELECT … LIMIT)``, so a batch
selects its keys, then deletes that key range with the age condition checked again, inside one
transaction. When a large share of a table with an integer key matches, batches skip the
select: each deletes the matching rows of the next key span (``id > a AND id <= b``, at most
the batch size of them), and the span follows the batch size through the estimated density of
matching keys. Times compare in UTC: the session's time_zone is +00:00.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC
from typing import Any

from wellkept.connector import (
    PurgeBatch,
    PurgeEstimate,
    PurgeRule,
    RowSink,
    check_sunk,
    render_conditions,
    sunk_batch,
)
from wellkept.connectors._plans import PlanCache
from wellkept.errors import TaskFailed

TIME_TYPES = ("date", "datetime", "timestamp")

_KEY = """
SELECT s.COLUMN_NAME FROM information_schema.STATISTICS s
JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA
  AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = %s AND s.NON_UNIQUE = 0
  AND c.IS_NULLABLE = 'NO'
  AND s.INDEX_NAME IN (SELECT INDEX_NAME FROM information_schema.STATISTICS
                       WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s
                       GROUP BY INDEX_NAME HAVING count(*) = 1)
ORDER BY s.INDEX_NAME = 'PRIMARY' DESC LIMIT 1
"""


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _rollback(conn: Any) -> None:
    """Roll a failed batch back. When the connection itself was lost (killed, dropped), the
    server has rolled it back already, and the error to report is the one that lost it, not
    the rollback's own on the dead connection (PyMySQL's bare \"(0, '')\")."""
    import pymysql

    with contextlib.suppress(pymysql.err.Error):
        conn.rollback()


def _one(conn: Any, sql: str, args: tuple[Any, ...]) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


Plan = tuple[str, str, str, str, str, list[Any], list[str], str, frozenset[str]]


def _json_columns(conn: Any, table: str, types: dict[str, str]) -> frozenset[str]:
    """The table's JSON columns: MySQL's JSON type, or MariaDB's (LONGTEXT with the column
    check ``json_valid(`col`)``). The driver hands both over as text."""
    import pymysql

    found = {c for c, t in types.items() if t == "json"}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE "
                        "CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
            clauses = {str(r[0]) for r in cur.fetchall()}
    except pymysql.MySQLError:  # MySQL's CHECK_CONSTRAINTS has no TABLE_NAME; JSON is a type
        clauses = set()
    found |= {c for c in types if f"json_valid({quote(c)})" in clauses}
    return frozenset(found)


def _document(value: Any) -> Any:
    """A JSON column's text as the document it holds (text that does not parse stays text)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _lookup(conn: Any, rule: PurgeRule) -> Plan:
    row = _one(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                     "DATABASE() AND TABLE_NAME = %s AND TABLE_TYPE = 'BASE TABLE'",
               (rule.table,))
    if row is None:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1 LIMIT 50")
            names = [r[0] for r in cur.fetchall()]
        raise TaskFailed(f"table {rule.table!r} does not exist; tables: "
                         + (", ".join(names) or "(none)"))
    table = row[0]
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                    (table,))
        types = {r[0]: str(r[1]).lower() for r in cur.fetchall()}
    column = next((c for c in types if c.lower() == rule.column.lower()), None)
    if column is None:
        raise TaskFailed(f"table {table!r} has no column {rule.column!r}; columns: "
                         + ", ".join(types))
    if types[column] not in TIME_TYPES:
        raise TaskFailed(f"column {column!r} of {table!r} is {types[column]}; cleanup on "
                         "MySQL compares a date, datetime or timestamp column with the cutoff")
    key = _one(conn, _KEY, (table, table))
    if key is None:
        raise TaskFailed(f"table {table!r} has no single-column primary or unique NOT NULL key "
                         "to walk in batches; refusing to clean it")
    extra, extra_args = render_conditions(rule, {c.lower(): c for c in types}, quote, "%s")
    return (quote(table), quote(column), quote(key[0]), key[0], extra, extra_args, list(types),
            types[key[0]], _json_columns(conn, table, types))


#: the plan of a run's rule, looked up once per run on each connection
_plan = PlanCache(_lookup)


def _cutoff(rule: PurgeRule) -> Any:
    return rule.cutoff.astimezone(UTC).replace(tzinfo=None)


def estimate(conn: Any, rule: PurgeRule, exact: bool = True) -> PurgeEstimate:
    """The matching rows: counted (with the oldest and newest) when ``exact``, else the
    optimizer's estimate (EXPLAIN's rows), which costs no scan."""
    table, column, key, key_name, extra, extra_args, columns, *_ = _plan(conn, rule)
    args = (_cutoff(rule), *extra_args)
    if exact:
        count_sql = (f"SELECT count(*), min({column}), max({column}) FROM {table} "
                     f"WHERE {column} < %s{extra}")
        count, oldest, newest = _one(conn, count_sql, args)
    else:
        count_sql = f"EXPLAIN SELECT 1 FROM {table} WHERE {column} < %s{extra}"
        with conn.cursor() as cur:
            cur.execute(count_sql, args)
            names = [d[0] for d in cur.description or ()]
            plan = cur.fetchall()
        count = sum(int(r[names.index("rows")] or 0) for r in plan) if "rows" in names else 0
        oldest = newest = None
    select_sql, delete_sql = _batch_sql(table, column, key, extra, first=False)
    batch_sql = [select_sql, delete_sql]
    if rule.archive_table:
        batch_sql.insert(1, _archive_sql(quote(rule.archive_table), table, column, key, extra,
                                         columns))
    return PurgeEstimate(rows=int(count), oldest=oldest, newest=newest, key=key_name,
                         statements=[count_sql, "START TRANSACTION", *batch_sql, "COMMIT"],
                         cutoff=_cutoff(rule).isoformat(), exact=exact)


def _batch_sql(table: str, column: str, key: str, extra: str,
               first: bool) -> tuple[str, str]:
    after = "" if first else f"{key} > %s AND "
    select = (f"SELECT {key} FROM {table} WHERE {after}{column} < %s{extra} ORDER BY {key} "
              "LIMIT %s FOR UPDATE")
    # a key range with the age condition checked again; at READ COMMITTED, InnoDB releases
    # its lock on each row of the range the condition rejects (the fresh rows) at once
    delete = f"DELETE FROM {table} WHERE {key} BETWEEN %s AND %s AND {column} < %s{extra}"
    return select, delete


def _last_key_sql(table: str, column: str, key: str, extra: str, first: bool) -> str:
    """The batch's last key and size, without sending every key back to wellkept."""
    after = "" if first else f"{key} > %s AND "
    return (f"SELECT MIN(k), MAX(k), COUNT(*) FROM (SELECT {key} AS k FROM {table} WHERE "
            f"{after}{column} < %s{extra} ORDER BY {key} LIMIT %s) AS batch")


def _archive_sql(archive: str, table: str, column: str, key: str, extra: str,
                 columns: list[str]) -> str:
    cols = ", ".join(quote(c) for c in columns)
    return (f"INSERT INTO {archive} ({cols}) SELECT {cols} FROM {table} "
            f"WHERE {key} BETWEEN %s AND %s AND {column} < %s{extra}")


def _ensure_archive(cur: Any, archive: str, table: str, columns: list[str]) -> list[str]:
    """Create the archive like the source when missing; an existing one needs every column.
    (CREATE TABLE commits implicitly in MySQL, so this runs before the batch's transaction.)
    Returns the columns to copy: the archive's generated columns (LIKE keeps them generated)
    take no value, and compute the same one from the others."""
    cur.execute(f"CREATE TABLE IF NOT EXISTS {archive} LIKE {table}")
    cur.execute("SELECT COLUMN_NAME, COALESCE(GENERATION_EXPRESSION, '') <> '' FROM "
                "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (archive.strip("`").replace("``", "`"),))
    have = {r[0].lower(): bool(r[1]) for r in cur.fetchall()}
    missing = [c for c in columns if c.lower() not in have]
    if missing:
        raise TaskFailed(f"archive table {archive} lacks column(s) of the source: "
                         + ", ".join(missing))
    return [c for c in columns if not have[c.lower()]]


def key_exists(conn: Any, rule: PurgeRule, key: Any) -> bool:
    table, _, key_q, *_ = _plan(conn, rule)
    return _one(conn, f"SELECT 1 FROM {table} WHERE {key_q} = %s", (key,)) is not None


def _batch_to_sink(conn: Any, rule: PurgeRule, after: Any, limit: int,
                   sink: RowSink) -> PurgeBatch:
    """Lock the batch's rows, hand them to the sink (which makes them durable), then delete
    exactly those keys, all in one transaction."""
    table, column, key, _, extra, extra_args, _, _, documents = _plan(conn, rule)
    after_sql = "" if after is None else f"{key} > %s AND "
    cutoff = _cutoff(rule)
    args = (cutoff, *extra_args, limit) if after is None else (after, cutoff, *extra_args, limit)
    t0 = time.perf_counter()
    conn.begin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {key}, {table}.* FROM {table} WHERE {after_sql}{column} < %s"
                        f"{extra} ORDER BY {key} LIMIT %s FOR UPDATE", args)
            fetched = cur.fetchall()
            t1 = time.perf_counter()
            if not fetched:
                conn.commit()
                return PurgeBatch(0, None, {"select": t1 - t0})
            names = [d[0] for d in cur.description][1:]
            keys = [r[0] for r in fetched]
            sink([{n: _document(v) if n in documents else v
                   for n, v in zip(names, r[1:], strict=True)} for r in fetched],
                 keys[0], keys[-1])
            t2 = time.perf_counter()
            cur.execute(f"DELETE FROM {table} WHERE {key} BETWEEN %s AND %s AND {column} < %s"
                        f"{extra}", (keys[0], keys[-1], cutoff, *extra_args))
            deleted = cur.rowcount
            check_sunk(keys, deleted)
        t3 = time.perf_counter()
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise
    return sunk_batch(keys, deleted, (t0, t1, t2, t3), time.perf_counter())


#: walk key spans, rather than select each batch's keys, when at least this share of the
#: table's rows match (by the optimizer's estimate)
SPAN_WALK_SHARE = 0.1
INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
#: the share of the batch size a key span is sized to hold
SPAN_FILL = 0.9


def _estimated_rows(cur: Any, sql: str, args: tuple[Any, ...] = ()) -> int:
    cur.execute("EXPLAIN " + sql, args)
    names = [d[0] for d in cur.description or ()]
    return sum(int(r[names.index("rows")] or 0) for r in cur.fetchall()) if "rows" in names else 0


def _span_walk(conn: Any, plan: Plan, cutoff: Any) -> dict[str, Any] | None:
    """The first span-walk cursor, when deleting key spans beats selecting keys: an integer
    key, and at least SPAN_WALK_SHARE of the rows matching. The walk ends at the key that is
    the largest now (rows added later are fresh, or are met by the next run)."""
    table, column, key, _, extra, extra_args, _, key_type, _ = plan
    if key_type not in INTEGER_TYPES:
        return None
    with conn.cursor() as cur:
        cur.execute(f"SELECT MIN({key}), MAX({key}) FROM {table}")
        low, high = cur.fetchone()
        if low is None:
            return None
        total = _estimated_rows(cur, f"SELECT 1 FROM {table}")
        matches = _estimated_rows(cur, f"SELECT 1 FROM {table} WHERE {column} < %s{extra}",
                                  (cutoff, *extra_args))
    if total <= 0 or matches < SPAN_WALK_SHARE * total:
        return None
    return {"key": int(low) - 1, "end": int(high),
            "per_key": max(matches / (int(high) - int(low) + 1), 1e-6)}


def _span_batch(conn: Any, plan: Plan, cutoff: Any, cursor: dict[str, Any],
                limit: int) -> PurgeBatch:
    """Delete the matching rows of the next key span, at most ``limit`` of them, in one short
    transaction: one statement, no keys shipped either way. The span is sized by the density
    of matching keys seen so far; when it held more than ``limit``, the next batch starts at
    the first matching key left in it."""
    table, column, key, _, extra, extra_args, *_ = plan
    start, end, per_key = int(cursor["key"]), int(cursor["end"]), float(cursor["per_key"])
    t0 = time.perf_counter()
    if start >= end:
        return PurgeBatch(0, None, {"select": time.perf_counter() - t0})
    # aim a little under the limit, so that a span of the expected density is finished in
    # one batch, and the limit (then a probe for what is left) only bites on denser ones
    stop = min(end, start + max(1, int(SPAN_FILL * limit / per_key)))
    where = f"{key} > %s AND {key} <= %s AND {column} < %s{extra}"
    args = (start, stop, cutoff, *extra_args)
    conn.begin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {table} WHERE {where} ORDER BY {key} LIMIT %s",
                        (*args, limit))
            deleted = cur.rowcount
        t1 = time.perf_counter()
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise
    t2 = time.perf_counter()
    following = stop
    if deleted >= limit:  # the span was denser than expected: go on from what is left in it
        with conn.cursor() as cur:
            cur.execute(f"SELECT MIN({key}) FROM {table} WHERE {where}", args)
            left = cur.fetchone()[0]
        following = stop if left is None else int(left) - 1
    # the density of matching keys over what this batch covered (halved, at most, when it
    # found none: a span of fresh rows must not make the next one unbounded)
    covered = max(1, following - start)
    per_key = deleted / covered if deleted else per_key / 2
    return PurgeBatch(deleted, {"key": following, "end": end, "per_key": max(per_key, 1e-6)},
                      {"delete": t1 - t0, "commit": t2 - t1,
                       "select": time.perf_counter() - t2})


def batch(conn: Any, rule: PurgeRule, after: Any, limit: int,
          sink: RowSink | None = None) -> PurgeBatch:
    if sink is not None:  # archive files are reconciled by key, so they always walk the key
        return _batch_to_sink(conn, rule, None if isinstance(after, dict) else after, limit,
                              sink)
    plan = _plan(conn, rule)
    table, column, key, _, extra, extra_args, columns, *_ = plan
    cutoff = _cutoff(rule)
    if rule.archive_table is None:
        if after is None:  # the first batch chooses the walk; None still means the key's start
            after = _span_walk(conn, plan, cutoff)
        if isinstance(after, dict):
            return _span_batch(conn, plan, cutoff, after, limit)
    select_sql, delete_sql = _batch_sql(table, column, key, extra, first=after is None)
    args = (cutoff, *extra_args, limit) if after is None else \
        (after, cutoff, *extra_args, limit)
    archive = quote(rule.archive_table) if rule.archive_table else None
    if archive is not None:
        with conn.cursor() as cur:
            columns = _ensure_archive(cur, archive, table, columns)
    t0 = time.perf_counter()
    conn.begin()
    try:
        with conn.cursor() as cur:
            if archive is not None:  # lock the batch's rows: the copy and the delete must agree
                cur.execute(select_sql, args)
                keys = [r[0] for r in cur.fetchall()]
                first_key, last_key = (keys[0], keys[-1]) if keys else (None, None)
            else:
                cur.execute(_last_key_sql(table, column, key, extra, after is None), args)
                first_key, last_key, _count = cur.fetchone()
            t1 = time.perf_counter()
            if last_key is None:
                conn.commit()
                return PurgeBatch(0, None, {"select": t1 - t0})
            span = (first_key, last_key, cutoff, *extra_args)
            archived = 0
            if archive is not None:
                cur.execute(_archive_sql(archive, table, column, key, extra, columns), span)
                archived = cur.rowcount
            t2 = time.perf_counter()
            cur.execute(delete_sql, span)
            deleted = cur.rowcount
            if archive is not None and archived != deleted:
                raise TaskFailed(f"the archive got {archived} rows but the delete removed "
                                 f"{deleted}; the batch was rolled back")
        t3 = time.perf_counter()
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise
    timings = {"select": t1 - t0, "delete": t3 - t2, "commit": time.perf_counter() - t3}
    if archive is not None:
        timings["archive"] = t2 - t1
    return PurgeBatch(deleted, last_key, timings, archived=archived)
