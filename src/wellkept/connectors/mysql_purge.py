"""MySQL/MariaDB batched deletes: keyset batches on a single-column key, one short transaction
each.

The table and column are found in information_schema (in the connection's database) and quoted
with backticks; values travel as parameters. MySQL refuses ``IN (SELECT … LIMIT)``, so a batch
selects its keys, then deletes that key range with the age condition checked again, inside one
transaction. Times compare in UTC: the session's time_zone is +00:00.
"""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

from wellkept.connector import PurgeBatch, PurgeEstimate, PurgeRule
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


def _one(conn: Any, sql: str, args: tuple[Any, ...]) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def _plan(conn: Any, rule: PurgeRule) -> tuple[str, str, str, str]:
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
    return quote(table), quote(column), quote(key[0]), key[0]


def _cutoff(rule: PurgeRule) -> Any:
    return rule.cutoff.astimezone(UTC).replace(tzinfo=None)


def estimate(conn: Any, rule: PurgeRule) -> PurgeEstimate:
    table, column, key, key_name = _plan(conn, rule)
    count_sql = f"SELECT count(*), min({column}), max({column}) FROM {table} WHERE {column} < %s"
    count, oldest, newest = _one(conn, count_sql, (_cutoff(rule),))
    select_sql, delete_sql = _batch_sql(table, column, key, first=False)
    return PurgeEstimate(rows=int(count), oldest=oldest, newest=newest, key=key_name,
                         statements=[count_sql, "START TRANSACTION", select_sql, delete_sql,
                                     "COMMIT"], cutoff=_cutoff(rule).isoformat())


def _batch_sql(table: str, column: str, key: str, first: bool) -> tuple[str, str]:
    after = "" if first else f"{key} > %s AND "
    select = (f"SELECT {key} FROM {table} WHERE {after}{column} < %s ORDER BY {key} "
              "LIMIT %s FOR UPDATE")
    delete = f"DELETE FROM {table} WHERE {key} BETWEEN %s AND %s AND {column} < %s"
    return select, delete


def batch(conn: Any, rule: PurgeRule, after: Any, limit: int) -> PurgeBatch:
    table, column, key, _ = _plan(conn, rule)
    select_sql, delete_sql = _batch_sql(table, column, key, first=after is None)
    cutoff = _cutoff(rule)
    args = (cutoff, limit) if after is None else (after, cutoff, limit)
    t0 = time.perf_counter()
    conn.begin()
    try:
        with conn.cursor() as cur:
            cur.execute(select_sql, args)
            keys = [r[0] for r in cur.fetchall()]
            t1 = time.perf_counter()
            if not keys:
                conn.commit()
                return PurgeBatch(0, None, {"select": t1 - t0})
            cur.execute(delete_sql, (keys[0], keys[-1], cutoff))
            deleted = cur.rowcount
        t2 = time.perf_counter()
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return PurgeBatch(deleted, keys[-1], {"select": t1 - t0, "delete": t2 - t1,
                                          "commit": time.perf_counter() - t2})
