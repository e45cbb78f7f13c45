"""PostgreSQL maintenance planning: which tables to VACUUM/ANALYZE, which indexes to rebuild,
which materialized views to refresh and how, and the statements that do it.

Every object named in the config goes through ``to_regclass`` (so it must exist and is looked up
with PostgreSQL's own name rules) and is quoted with ``psycopg.sql.Identifier``; nothing from the
config is pasted into SQL text. Plans are bounded (``max_tables`` and friends, worst first).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from wellkept.connectors import pg_catalog
from wellkept.errors import TaskFailed
from wellkept.records import Action, Metrics

if TYPE_CHECKING:
    from wellkept.connectors.postgresql import PostgresConnector

LEFTOVER = re.compile(r"_cc(new|old)\d*$")


def _ident(conn: Any, schema: str, name: str) -> str:
    from psycopg import sql

    return str(sql.Identifier(schema, name).as_string(conn))


def resolve(conn: Any, names: list[str], kinds: str) -> list[dict[str, Any]]:
    """Look each name up with to_regclass; raise TaskFailed naming the ones that are missing.

    ``kinds`` is the set of pg_class.relkind letters accepted (``r``/``p`` tables, ``i`` indexes,
    ``m`` materialized views)."""
    found, missing = [], []
    for name in names:
        try:
            row = conn.execute(
                "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                (name,)).fetchone()
        except Exception:  # invalid name syntax: the same as a name that does not exist
            row = None
        if row is None or row[3] not in kinds:
            missing.append(name)
        else:
            found.append({"oid": row[0], "schema": row[1], "name": row[2], "relkind": row[3]})
    if missing:
        raise TaskFailed("not found (or not the right kind of object): "
                         + ", ".join(repr(m) for m in missing))
    return found


# --- vacuum -------------------------------------------------------------------------------------

_VACUUM_NEEDS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, s.n_live_tup AS live, s.n_dead_tup AS dead,
       s.n_mod_since_analyze AS modified, age(c.relfrozenxid) AS xid_age,
       s.last_vacuum, s.last_autovacuum,
       round(100.0 * s.n_dead_tup / greatest(s.n_live_tup + s.n_dead_tup, 1), 1) AS dead_percent
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND ((s.n_dead_tup >= %(min_dead)s
        AND 100.0 * s.n_dead_tup / greatest(s.n_live_tup + s.n_dead_tup, 1) >= %(pct)s)
       OR age(c.relfrozenxid) >= %(freeze)s)
ORDER BY age(c.relfrozenxid) >= %(freeze)s DESC, s.n_dead_tup DESC
LIMIT %(limit)s
"""

_TABLE_EVIDENCE = """
SELECT s.relid AS oid, s.n_live_tup AS live, s.n_dead_tup AS dead,
       s.n_mod_since_analyze AS modified, age(c.relfrozenxid) AS xid_age,
       s.last_vacuum, s.last_autovacuum
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.relid = ANY(%(oids)s)
"""


def plan_vacuum(conn: Any, params: Any, lock_timeout_s: float) -> list[Action]:
    if params.full and not params.tables:
        raise TaskFailed("full: true rewrites each table under an ACCESS EXCLUSIVE lock; it is "
                         "allowed only with an explicit `tables:` list")
    if params.full and lock_timeout_s <= 0:
        raise TaskFailed("full: true needs a lock_timeout on the target, so that the ACCESS "
                         "EXCLUSIVE lock request cannot stall every other session")
    if params.tables:
        rows = [{**r, "reason": "listed in `tables`"} for r in
                resolve(conn, list(params.tables), "rmp")]
        evidence_rows = {r["oid"]: r for r in pg_catalog.bounded(
            conn, _TABLE_EVIDENCE, {"oids": [r["oid"] for r in rows]})}
    else:
        evidence_rows = {}
        rows = []
        for r in pg_catalog.bounded(conn, _VACUUM_NEEDS, {
                "min_dead": params.min_dead_tuples, "pct": params.min_dead_percent,
                "freeze": params.freeze_age, "limit": params.max_tables}):
            frozen = r["xid_age"] >= params.freeze_age
            r["reason"] = (f"transaction-ID age {r['xid_age']:,} passed freeze_age "
                           f"{params.freeze_age:,}" if frozen else
                           f"{r['dead']:,} dead tuples, {r['dead_percent']}% of the table "
                           f"(thresholds {params.min_dead_tuples:,} and "
                           f"{params.min_dead_percent:g}%)")
            r["freeze"] = frozen
            rows.append(r)
    actions = []
    for r in rows:
        options = ["FULL"] if params.full else []
        if r.get("freeze"):
            options.append("FREEZE")
        if params.analyze:
            options.append("ANALYZE")
        target = _ident(conn, r["schema"], r["name"])
        statement = f"VACUUM ({', '.join(options)}) {target}" if options else f"VACUUM {target}"
        evidence = {k: _plain(v) for k, v in {**evidence_rows.get(r["oid"], {}), **r}.items()
                    if k not in ("oid", "reason", "relkind", "freeze", "schema", "name")}
        actions.append(Action(f"{r['schema']}.{r['name']}", statement, r["reason"], evidence,
                              meta={"op": "vacuum", "regclass": target, "unbounded": True}))
    return actions


# --- analyze ------------------------------------------------------------------------------------

_ANALYZE_NEEDS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, s.n_live_tup AS live,
       s.n_mod_since_analyze AS modified, s.last_analyze, s.last_autoanalyze
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
       AND s.n_live_tup + s.n_mod_since_analyze > 0)
   OR (s.n_mod_since_analyze >= %(min_changes)s
       AND s.n_mod_since_analyze >= %(pct)s / 100.0 * greatest(s.n_live_tup, 1))
ORDER BY s.n_mod_since_analyze DESC
LIMIT %(limit)s
"""


def plan_analyze(conn: Any, params: Any) -> list[Action]:
    if params.tables:
        rows = [{**r, "reason": "listed in `tables`"} for r in
                resolve(conn, list(params.tables), "rmp")]
    else:
        rows = pg_catalog.bounded(conn, _ANALYZE_NEEDS, {
            "min_changes": params.min_changes, "pct": params.stale_percent,
            "limit": params.max_tables})
        for r in rows:
            never = r["last_analyze"] is None and r["last_autoanalyze"] is None
            r["reason"] = ("never analyzed" if never else
                           f"{r['modified']:,} rows changed since the last ANALYZE, "
                           f"{100 * r['modified'] / max(r['live'], 1):.0f}% of "
                           f"{r['live']:,} (threshold {params.stale_percent:g}%)")
    return [Action(f"{r['schema']}.{r['name']}", f"ANALYZE {_ident(conn, r['schema'], r['name'])}",
                   r["reason"], {k: _plain(v) for k, v in r.items()
                                 if k not in ("oid", "reason", "schema", "name", "relkind")},
                   meta={"op": "analyze"}) for r in rows]


# --- reindex ------------------------------------------------------------------------------------

_EXCLUSION = """
SELECT i.indexrelid FROM pg_index i JOIN pg_constraint k ON k.conindid = i.indexrelid
WHERE k.contype = 'x' AND i.indexrelid = ANY(%(oids)s)
"""


def plan_reindex(conn: Any, params: Any) -> list[Action]:
    """First drop leftovers of failed concurrent rebuilds, then rebuild bloated indexes."""
    actions = []
    health = pg_catalog.index_health(conn, timeout_ms=params.catalog_timeout_ms, top=1000)
    invalid = health.get("invalid_indexes")
    if not isinstance(invalid, list):
        raise TaskFailed("could not list invalid indexes, so leftovers of failed rebuilds cannot "
                         f"be told apart: {invalid.get('error') if invalid else 'no answer'}")
    for idx in invalid:
        if not LEFTOVER.search(idx["index"]):
            continue
        if idx.get("building"):  # a CREATE/REINDEX CONCURRENTLY is running right now
            continue
        actions.append(Action(
            f"{idx['schema']}.{idx['index']}",
            f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(conn, idx['schema'], idx['index'])}",
            "invalid leftover of a failed REINDEX/CREATE INDEX CONCURRENTLY",
            {"bytes": idx.get("bytes")}, meta={"op": "drop_leftover", "unbounded": True}))
    if params.indexes:
        chosen = [{"schema": r["schema"], "index": r["name"], "oid": r["oid"],
                   "reason": "listed in `indexes`"} for r in
                  resolve(conn, list(params.indexes), "i")]
    else:
        chosen = []
        # ask for more than max_indexes: the percent filter comes after the estimate's own
        # order (wasted bytes), and big, mildly bloated indexes must not crowd out the rest
        for row in pg_catalog.index_bloat(conn, limit=min(params.max_indexes * 20, 1000),
                                          min_bytes=params.min_bytes,
                                          timeout_ms=params.catalog_timeout_ms):
            if row["bloat_percent"] < params.min_bloat_percent:
                continue
            if len(chosen) >= params.max_indexes:
                break
            if LEFTOVER.search(row["index"]):
                continue
            row["reason"] = (f"estimated {row['bloat_percent']}% bloat "
                             f"({row['bloat_bytes']:,} of {row['bytes']:,} bytes; thresholds "
                             f"{params.min_bloat_percent:g}% and {params.min_bytes:,} bytes)")
            chosen.append(row)
        found = resolve(conn, [_ident(conn, r["schema"], r["index"]) for r in chosen], "i") \
            if chosen else []
        oids = {(f["schema"], f["name"]): f["oid"] for f in found}
        for r in chosen:
            r["oid"] = oids.get((r["schema"], r["index"]))
    exclusion = {row["indexrelid"] for row in pg_catalog.bounded(
        conn, _EXCLUSION, {"oids": [r["oid"] for r in chosen]})} if chosen else set()
    if params.indexes and exclusion:
        raise TaskFailed("REINDEX CONCURRENTLY cannot rebuild the index of an exclusion "
                         "constraint: " + ", ".join(f"{r['schema']}.{r['index']}" for r in chosen
                                                   if r["oid"] in exclusion))
    for r in chosen:
        name = f"{r['schema']}.{r['index']}"
        if r["oid"] in exclusion:
            continue  # REINDEX CONCURRENTLY cannot rebuild exclusion-constraint indexes
        evidence = {k: _plain(v) for k, v in r.items()
                    if k not in ("oid", "reason", "schema", "index", "table")}
        ident = _ident(conn, r["schema"], r["index"])
        actions.append(Action(name, f"REINDEX INDEX CONCURRENTLY {ident}", r["reason"],
                              evidence, meta={"op": "reindex", "regclass": ident,
                                              "unbounded": True, "retry": False,
                                              "index": (r["schema"], r["index"])}))
    return actions


# --- materialized views -------------------------------------------------------------------------

_VIEWS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relispopulated AS populated,
       u.indexrelid::regclass::text AS unique_index,
       (SELECT array_agg(s.attname::text) FROM pg_attribute a
          JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                         AND s.attname = a.attname
         WHERE a.attrelid = c.oid AND a.attnum = ANY(u.indkey) AND s.null_frac > 0
       ) AS nullable_key_columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT i.indexrelid, i.indkey FROM pg_index i
  WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
    AND i.indexprs IS NULL LIMIT 1) u ON true
WHERE c.relkind = 'm' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (%(oids)s::oid[] IS NULL OR c.oid = ANY(%(oids)s::oid[]))
ORDER BY n.nspname, c.relname
"""


def plan_views(conn: Any, params: Any) -> list[Action]:
    oids = [r["oid"] for r in resolve(conn, list(params.views), "m")] if params.views else None
    actions = []
    for v in pg_catalog.bounded(conn, _VIEWS, {"oids": oids}):
        target = _ident(conn, v["schema"], v["name"])
        if params.concurrently and v["populated"] and v["unique_index"]:
            statement = f"REFRESH MATERIALIZED VIEW CONCURRENTLY {target}"
            reason = (f"concurrently: populated, with the unique index {v['unique_index']} on "
                      "plain columns, so readers are not blocked")
            if v["nullable_key_columns"]:
                reason += (f"; beware: key column(s) {', '.join(v['nullable_key_columns'])} "
                           "hold NULLs, and rows with a NULL key are rewritten on every refresh")
        else:
            statement = f"REFRESH MATERIALIZED VIEW {target}"
            why = ("concurrent refresh is turned off" if not params.concurrently else
                   "the view is not populated yet" if not v["populated"] else
                   "no unique index on plain columns without WHERE")
            reason = f"plain (blocks readers while it runs): {why}"
        actions.append(Action(f"{v['schema']}.{v['name']}", statement, reason,
                              {"populated": v["populated"], "unique_index": v["unique_index"],
                               "nullable_key_columns": v["nullable_key_columns"]},
                              meta={"op": "refresh",
                                    "concurrent": "CONCURRENTLY" in statement}))
    return actions


# --- execution ----------------------------------------------------------------------------------


def _size(conn: Any, name: str | None) -> int | None:
    """Size by (quoted) name: REINDEX CONCURRENTLY swaps a new relation in under the old name."""
    if name is None:
        return None
    row = conn.execute("SELECT pg_total_relation_size(to_regclass(%s))", (name,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def apply(connector: PostgresConnector, action: Action) -> Metrics:
    conn = connector.conn
    name = action.meta.get("regclass")
    op = action.meta["op"]
    before = _size(conn, name) if op in ("vacuum", "reindex") else None
    try:
        if action.meta.get("unbounded"):
            with connector.unbounded_statement():
                conn.execute(action.statement)
        else:
            conn.execute(action.statement)
    except Exception:
        if action.meta.get("index") and not conn.closed:
            _drop_own_leftovers(connector, *action.meta["index"])
        raise
    metrics: Metrics = {}
    if op in ("vacuum", "analyze"):
        metrics["tables_processed"] = 1
    elif op in ("reindex", "drop_leftover"):
        metrics["indexes_processed"] = 1
    elif op == "refresh":
        metrics["views_processed"] = 1
        metrics["concurrent_refreshes"] = 1 if action.meta.get("concurrent") else 0
    elif op == "advice":
        metrics["advice_applied"] = 1
    if before is not None:
        after = _size(conn, name) or 0
        metrics["bytes_freed"] = max(before - after, 0)
    return metrics


_OWN_LEFTOVERS = """
SELECT n.nspname, c.relname FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = %(schema)s
  AND left(c.relname, length(%(name)s)) = %(name)s
  AND substr(c.relname, length(%(name)s) + 1) ~ '^_ccnew[0-9]*$'
"""


def _drop_own_leftovers(connector: PostgresConnector, schema: str, name: str) -> None:
    """A failed REINDEX CONCURRENTLY leaves an invalid ``<index>_ccnew`` copy that writes still
    maintain: drop it now rather than on the next run. Best effort: the next run's leftover
    sweep catches whatever this misses."""
    conn = connector.conn
    try:
        for leftover in conn.execute(_OWN_LEFTOVERS, {"schema": schema, "name": name}).fetchall():
            with connector.unbounded_statement():
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(conn, *leftover)}")
    except Exception:  # the original error is what the run reports
        return


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
