"""PostgreSQL batched deletes, one short transaction each, in one of two walks.

- **Key walk**: the next ``limit`` matching keys past the last one done, deleted by key. It
  costs an index probe per row, which is cheap when few rows match.
- **Page walk**: when a large share of the table matches (and the server has TID range
  scans, PostgreSQL 14+), each batch deletes the matching rows of the next run of heap pages
  (``ctid`` between two page numbers). That reads each page once, as a single DELETE does,
  with no key lookups. Its cursor is ``{"page": N, "per_page": rows}``; the number of pages
  per batch is ``limit`` divided by the expected matches per page, so the task's adaptive
  batch size works the same in both walks. A resumed run keeps the walk its cursor names.

The table is found with to_regclass and the column in pg_attribute; both are quoted with
psycopg.sql.Identifier. The walk key is a single-column primary key, or failing that a
single-column unique index on a NOT NULL column; tables without one are refused (the page
walk needs none, but the archive-file path and resume checks do, so the rule is the same).
"""

from __future__ import annotations

import time
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
from wellkept.connectors.pg_maintenance import resolve
from wellkept.errors import TaskFailed

_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s AND i.indnatts = 1 AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attnotnull
ORDER BY i.indisprimary DESC LIMIT 1
"""


Plan = tuple[Any, Any, Any, str, Any, list[Any], list[str], dict[str, Any]]


def _lookup(conn: Any, rule: PurgeRule) -> Plan:
    """The quoted table, column and key; the extra conditions; the columns; the table."""
    from psycopg import sql

    (table,) = resolve(conn, [rule.table], "rp")
    types = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table["oid"],)).fetchall())
    columns = list(types)
    column = rule.column if rule.column in columns else next(
        (c for c in columns if c == rule.column.lower()), None)
    if column is None:
        raise TaskFailed(f"table {table['schema']}.{table['name']} has no column "
                         f"{rule.column!r}; columns: {', '.join(columns)}")
    if not types[column].startswith(("timestamp", "date")):
        raise TaskFailed(f"column {column!r} of {table['schema']}.{table['name']} is "
                         f"{types[column]}; cleanup on PostgreSQL compares a date, timestamp or "
                         "timestamptz column with the cutoff")
    key = conn.execute(_KEY, (table["oid"],)).fetchone()
    if key is None:
        raise TaskFailed(f"table {table['schema']}.{table['name']} has no single-column primary "
                         "or unique NOT NULL key to walk in batches; refusing to clean it")
    extra, extra_args = render_conditions(
        rule, {c.lower(): c for c in columns},
        lambda name: str(sql.Identifier(name).as_string(conn)), "%s")
    return (sql.Identifier(table["schema"], table["name"]), sql.Identifier(column),
            sql.Identifier(key[0]), key[0], sql.SQL(extra), extra_args, columns, table)


#: the plan of a run's rule, looked up once per run on each connection
_plan = PlanCache(_lookup)


def estimate(conn: Any, rule: PurgeRule, exact: bool = True) -> PurgeEstimate:
    """The matching rows: counted (with the oldest and newest) when ``exact``, else the
    planner's estimate, which costs no scan."""
    from psycopg import sql

    table, column, key, key_name, extra, extra_args, columns, info = _plan(conn, rule)
    args = (rule.cutoff, *extra_args)
    if exact:
        count_sql = sql.SQL("SELECT count(*), min({c}), max({c}) FROM {t} WHERE {c} < %s{x}"
                            ).format(c=column, t=table, x=extra)
        count, oldest, newest = conn.execute(count_sql, args).fetchone()
    else:
        count_sql = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {t} WHERE {c} < %s{x}"
                            ).format(t=table, c=column, x=extra)
        plan = conn.execute(count_sql, args).fetchone()[0]
        count, oldest, newest = int(plan[0]["Plan"]["Plan Rows"]), None, None
    archive = _archive_ident(rule, info) if rule.archive_table else None
    delete_sql = _batch_sql(table, column, key, extra, columns, archive, first=False)
    return PurgeEstimate(rows=count, oldest=oldest, newest=newest, key=key_name,
                         statements=[count_sql.as_string(conn), "BEGIN",
                                     delete_sql.as_string(conn), "COMMIT"],
                         cutoff=rule.cutoff.isoformat(), exact=exact)


def _archive_ident(rule: PurgeRule, table: dict[str, Any]) -> Any:
    """``archive_to`` as a quoted name: ``schema.name``, or the source's schema."""
    from psycopg import sql

    assert rule.archive_table is not None
    schema, _, name = rule.archive_table.rpartition(".")
    return sql.Identifier(schema or table["schema"], name)


def _batch_sql(table: Any, column: Any, key: Any, extra: Any, columns: list[str],
               archive: Any, first: bool, overriding: bool = False) -> Any:
    """One statement per batch: delete the next keys (and, archiving, copy the deleted rows
    to the archive table in the same statement, so both commit or neither does)."""
    from psycopg import sql

    after = sql.SQL("") if first else sql.SQL("{k} > %s AND ").format(k=key)
    select = sql.SQL("SELECT {k} FROM {t} WHERE {after}{c} < %s{x} ORDER BY {k} "
                     "LIMIT %s").format(k=key, t=table, c=column, after=after, x=extra)
    # = ANY(ARRAY(…)) rather than IN (…): with IN, large batches get planned as a hash over
    # the whole table; the array form stays an index probe per key at any batch size
    if archive is None:
        return sql.SQL("DELETE FROM {t} WHERE {k} = ANY(ARRAY({select})) RETURNING {k}, 0"
                       ).format(t=table, k=key, select=select)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(
        "WITH d AS (DELETE FROM {t} WHERE {k} = ANY(ARRAY({select})) RETURNING *), "
        "a AS (INSERT INTO {a} ({cols}){o} SELECT {cols} FROM d RETURNING 1) "
        "SELECT {k}, (SELECT count(*) FROM a) FROM d").format(
        t=table, k=key, select=select, a=archive, cols=cols, o=_overriding(overriding))


def _overriding(overriding: bool) -> Any:
    from psycopg import sql

    return sql.SQL(" OVERRIDING SYSTEM VALUE" if overriding else "")


#: the columns of a table whose default draws on a sequence (nextval of a serial's sequence)
_SEQUENCE_DEFAULTS = """
SELECT a.attname FROM pg_attrdef d
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = to_regclass(%s) AND EXISTS (
  SELECT 1 FROM pg_depend p JOIN pg_class s ON s.oid = p.refobjid AND s.relkind = 'S'
  WHERE p.classid = 'pg_attrdef'::regclass AND p.objid = d.oid
    AND p.refclassid = 'pg_class'::regclass)
"""


def _ensure_archive(conn: Any, archive: Any, table: Any,
                    columns: list[str]) -> tuple[list[str], bool]:
    """Create the archive like the source when missing; an existing one needs every column.
    Returns the columns to copy and whether the copy must override an identity column: an
    archive made with LIKE … INCLUDING ALL keeps GENERATED ALWAYS identities, which take a
    value only so, and generated columns, which take none (they compute the same one)."""
    from psycopg import sql

    name = archive.as_string(conn)
    exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]
    if exists is None:
        conn.execute(sql.SQL("CREATE TABLE {a} (LIKE {t} INCLUDING DEFAULTS INCLUDING "
                             "CONSTRAINTS INCLUDING INDEXES)").format(a=archive, t=table))
        # a serial column's default is the source's own sequence: kept, it would tie the
        # archive to the source (which could no longer be dropped without CASCADE); every
        # archived row brings its value anyway
        for (col,) in conn.execute(_SEQUENCE_DEFAULTS, (name,)).fetchall():
            conn.execute(sql.SQL("ALTER TABLE {a} ALTER COLUMN {c} DROP DEFAULT").format(
                a=archive, c=sql.Identifier(col)))
        return columns, False
    have = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT attname, attgenerated <> '', attidentity = 'a' FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (name,)).fetchall()}
    missing = [c for c in columns if c not in have]
    if missing:
        raise TaskFailed(f"archive table {name} lacks column(s) of the source: "
                         + ", ".join(missing))
    copied = [c for c in columns if not have[c][0]]
    return copied, any(have[c][1] for c in copied)


def key_exists(conn: Any, rule: PurgeRule, key: Any) -> bool:
    from psycopg import sql

    table, _, key_ident, *_ = _plan(conn, rule)
    return conn.execute(sql.SQL("SELECT 1 FROM {t} WHERE {k} = %s").format(
        t=table, k=key_ident), (key,)).fetchone() is not None


def _batch_to_sink(conn: Any, rule: PurgeRule, after: Any, limit: int,
                   sink: RowSink) -> PurgeBatch:
    """Lock the batch's rows, hand them to the sink (which makes them durable), then delete
    exactly those keys, all in one transaction."""
    from psycopg import sql

    table, column, key, _, extra, extra_args, _, _ = _plan(conn, rule)
    after_sql = sql.SQL("") if after is None else sql.SQL("{k} > %s AND ").format(k=key)
    select = sql.SQL("SELECT {k}, * FROM {t} WHERE {a}{c} < %s{x} ORDER BY {k} LIMIT %s "
                     "FOR UPDATE").format(k=key, t=table, a=after_sql, c=column, x=extra)
    args = (rule.cutoff, *extra_args, limit) if after is None else \
        (after, rule.cutoff, *extra_args, limit)
    t0 = time.perf_counter()
    with conn.transaction():
        cur = conn.execute(select, args)
        fetched = cur.fetchall()
        t1 = time.perf_counter()
        if not fetched:
            return PurgeBatch(0, None, {"select": t1 - t0})
        names = [d.name for d in cur.description][1:]
        keys = [r[0] for r in fetched]
        sink([dict(zip(names, r[1:], strict=True)) for r in fetched], keys[0], keys[-1])
        t2 = time.perf_counter()
        deleted = conn.execute(sql.SQL("DELETE FROM {t} WHERE {k} = ANY(%s)").format(
            t=table, k=key), (keys,)).rowcount
        check_sunk(keys, deleted)
        t3 = time.perf_counter()
    return sunk_batch(keys, deleted, (t0, t1, t2, t3), time.perf_counter())


#: walk pages rather than keys when at least this share of the table's rows match
PAGE_WALK_SHARE = 0.1


def _page_walk(conn: Any, info: dict[str, Any], where: Any,
               args: tuple[Any, ...]) -> dict[str, Any] | None:
    """The first page-walk cursor, when walking pages beats walking the key: a plain table
    with no inheritance children, a server with TID range scans, and by the planner's
    estimate at least PAGE_WALK_SHARE of its rows matching."""
    from psycopg import sql

    if info["relkind"] != "r" or conn.info.server_version < 140000:
        return None
    pages, tuples, children = conn.execute(
        "SELECT relpages, reltuples, relhassubclass FROM pg_class WHERE oid = %s",
        (info["oid"],)).fetchone()
    if children or pages <= 0 or tuples <= 0:  # never analyzed: no basis to choose
        return None
    plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {t} WHERE {w}").format(
        t=sql.Identifier(info["schema"], info["name"]), w=where), args).fetchone()[0]
    matches = float(plan[0]["Plan"]["Plan Rows"])
    if matches < PAGE_WALK_SHARE * tuples:
        return None
    return {"page": 0, "per_page": max(matches / pages, 1.0)}


def _page_batch(conn: Any, table: Any, info: dict[str, Any], where: Any,
                args: tuple[Any, ...], cursor: dict[str, Any], limit: int,
                archive: Any, columns: list[str]) -> PurgeBatch:
    """Delete the matching rows of the next pages; done once the cursor passes the table's
    current end (rows appended meanwhile are fresh, or were met at their old place)."""
    from psycopg import sql

    start = int(cursor["page"])
    t0 = time.perf_counter()
    blocks = conn.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int",
                          (info["oid"],)).fetchone()[0]
    if start >= blocks:
        return PurgeBatch(0, None, {"select": time.perf_counter() - t0})
    end = start + max(1, -(-limit // max(int(cursor["per_page"]), 1)))
    pages = sql.SQL("ctid >= %s::tid AND ctid < %s::tid AND ")
    bounds = (f"({start},0)", f"({end},0)")
    with conn.transaction():
        if archive is None:
            deleted = conn.execute(sql.SQL("DELETE FROM {t} WHERE {p}{w}").format(
                t=table, p=pages, w=where), (*bounds, *args)).rowcount
            archived = 0
        else:
            copied, overriding = _ensure_archive(conn, archive, table, columns)
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in copied)
            deleted, archived = conn.execute(sql.SQL(
                "WITH d AS (DELETE FROM {t} WHERE {p}{w} RETURNING *), "
                "a AS (INSERT INTO {a} ({cols}){o} SELECT {cols} FROM d RETURNING 1) "
                "SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM a)").format(
                t=table, p=pages, w=where, a=archive, cols=cols, o=_overriding(overriding)),
                (*bounds, *args)).fetchone()
            if archived != deleted:  # rolls the batch back
                raise TaskFailed(f"the archive got {archived} rows but {deleted} were deleted")
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    name = "archive+delete" if archive is not None else "delete"
    return PurgeBatch(deleted, {"page": end, "per_page": cursor["per_page"]},
                      {name: t1 - t0, "commit": t2 - t1}, archived=archived)


def batch(conn: Any, rule: PurgeRule, after: Any, limit: int,
          sink: RowSink | None = None) -> PurgeBatch:
    if sink is not None:
        # archive files are reconciled by key, so they always walk the key
        return _batch_to_sink(conn, rule, None if isinstance(after, dict) else after, limit,
                              sink)
    from psycopg import sql

    table, column, key, _, extra, extra_args, columns, info = _plan(conn, rule)
    archive = _archive_ident(rule, info) if rule.archive_table else None
    where = sql.SQL("{c} < %s{x}").format(c=column, x=extra)
    where_args = (rule.cutoff, *extra_args)
    if after is None:  # the first batch chooses the walk; None still means the key's start
        after = _page_walk(conn, info, where, where_args)
    if isinstance(after, dict):
        return _page_batch(conn, table, info, where, where_args, after, limit, archive,
                           columns)
    args = (rule.cutoff, *extra_args, limit) if after is None else \
        (after, rule.cutoff, *extra_args, limit)
    t0 = time.perf_counter()
    with conn.transaction():
        copied, overriding = columns, False
        if archive is not None:
            copied, overriding = _ensure_archive(conn, archive, table, columns)
        delete_sql = _batch_sql(table, column, key, extra, copied, archive,
                                first=after is None, overriding=overriding)
        rows = conn.execute(delete_sql, args).fetchall()
        archived = int(rows[0][1]) if rows and archive is not None else 0
        if archive is not None and archived != len(rows):  # rolls the batch back
            raise TaskFailed(f"the archive got {archived} rows but {len(rows)} were deleted")
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    if not rows:
        return PurgeBatch(0, None, {"delete": t1 - t0})
    name = "archive+delete" if archive is not None else "delete"
    return PurgeBatch(len(rows), max(r[0] for r in rows), {name: t1 - t0, "commit": t2 - t1},
                      archived=archived)
