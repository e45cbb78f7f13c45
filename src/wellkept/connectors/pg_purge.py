"""PostgreSQL batched deletes: keyset batches on the primary key, one short transaction each.

The table is found with to_regclass and the column in pg_attribute; both are quoted with
psycopg.sql.Identifier. The walk key is a single-column primary key, or failing that a
single-column unique index on a NOT NULL column; tables without one are refused.
"""

from __future__ import annotations

import time
from typing import Any

from wellkept.connector import PurgeBatch, PurgeEstimate, PurgeRule
from wellkept.connectors.pg_maintenance import resolve
from wellkept.errors import TaskFailed

_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s AND i.indnatts = 1 AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attnotnull
ORDER BY i.indisprimary DESC LIMIT 1
"""


def _plan(conn: Any, rule: PurgeRule) -> tuple[Any, Any, Any, str]:
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
    return (sql.Identifier(table["schema"], table["name"]), sql.Identifier(column),
            sql.Identifier(key[0]), key[0])


def estimate(conn: Any, rule: PurgeRule) -> PurgeEstimate:
    from psycopg import sql

    table, column, key, key_name = _plan(conn, rule)
    count_sql = sql.SQL("SELECT count(*), min({c}), max({c}) FROM {t} WHERE {c} < %s").format(
        c=column, t=table)
    count, oldest, newest = conn.execute(count_sql, (rule.cutoff,)).fetchone()
    _, delete_sql = _batch_sql(table, column, key, first=False)
    return PurgeEstimate(rows=count, oldest=oldest, newest=newest, key=key_name,
                         statements=[count_sql.as_string(conn), "BEGIN",
                                     delete_sql.as_string(conn), "COMMIT"],
                         cutoff=rule.cutoff.isoformat())


def _batch_sql(table: Any, column: Any, key: Any, first: bool) -> tuple[Any, Any]:
    from psycopg import sql

    after = sql.SQL("") if first else sql.SQL("{k} > %s AND ").format(k=key)
    select = sql.SQL("SELECT {k} FROM {t} WHERE {after}{c} < %s ORDER BY {k} LIMIT %s").format(
        k=key, t=table, c=column, after=after)
    delete = sql.SQL("DELETE FROM {t} WHERE {k} IN ({select}) RETURNING {k}").format(
        t=table, k=key, select=select)
    return select, delete


def batch(conn: Any, rule: PurgeRule, after: Any, limit: int) -> PurgeBatch:
    table, column, key, _ = _plan(conn, rule)
    _, delete_sql = _batch_sql(table, column, key, first=after is None)
    args = (rule.cutoff, limit) if after is None else (after, rule.cutoff, limit)
    t0 = time.perf_counter()
    with conn.transaction():
        keys = [r[0] for r in conn.execute(delete_sql, args).fetchall()]
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    if not keys:
        return PurgeBatch(0, None, {"delete": t1 - t0})
    return PurgeBatch(len(keys), max(keys), {"delete": t1 - t0, "commit": t2 - t1})
