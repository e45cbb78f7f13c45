"""MySQL/MariaDB maintenance: which tables to ANALYZE, OPTIMIZE or CHECK, and running them.

Every statement names one table, so each takes its own short metadata lock, bounded by the
session's ``lock_wait_timeout`` (the target's ``lock_timeout``); one table failing leaves the
others to be done. Names come from ``information_schema`` and are quoted with backticks.
The server's answer rows (``Table, Op, Msg_type, Msg_text``) are read: an ``error`` row fails
that table, and InnoDB's "doing recreate + analyze instead" note is the normal answer to
OPTIMIZE TABLE.
"""

from __future__ import annotations

from typing import Any

from wellkept.errors import TaskFailed, Unavailable
from wellkept.records import Action, Metrics


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def rows(conn: Any, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        names = [d[0].lower() for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _fresh_statistics(conn: Any) -> None:
    """MySQL 8 caches information_schema table figures for a day; ask for live ones."""
    try:
        rows(conn, "SET SESSION information_schema_stats_expiry = 0")
    except Exception:  # MariaDB has no such cache (nor the variable)
        return


_TABLES = """SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_ROWS AS table_rows,
       DATA_LENGTH AS data_bytes, INDEX_LENGTH AS index_bytes, DATA_FREE AS free_bytes,
       UPDATE_TIME AS update_time
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"""


def tables(conn: Any) -> dict[str, dict[str, Any]]:
    _fresh_statistics(conn)
    return {r["name"]: r for r in rows(conn, _TABLES)}


def allocated(row: dict[str, Any]) -> int:
    """The table's space on disk: data, indexes and the free space inside them."""
    return (int(row["data_bytes"] or 0) + int(row["index_bytes"] or 0)
            + int(row["free_bytes"] or 0))


def _chosen(conn: Any, listed: list[str]) -> dict[str, dict[str, Any]]:
    known = tables(conn)
    missing = [t for t in listed if t not in known]
    if missing:
        raise TaskFailed("not found in this database (or not a base table): "
                         + ", ".join(repr(m) for m in missing))
    return {t: {**known[t], "reason": "listed in `tables`"} for t in listed}


def _evidence(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
            if k not in ("name", "reason")}


# --- analyze ------------------------------------------------------------------------------------

_STATS = """SELECT table_name AS name, last_update, n_rows FROM mysql.innodb_table_stats
WHERE database_name = DATABASE()"""


def plan_analyze(conn: Any, params: Any) -> list[Action]:
    """Tables never analyzed, or changed since InnoDB's persistent statistics were last
    computed (UPDATE_TIME at or after innodb_table_stats.last_update); other engines
    always (their ANALYZE is a no-op when nothing changed)."""
    if params.tables:
        chosen = list(_chosen(conn, list(params.tables)).values())
    else:
        try:
            stats = {r["name"]: r for r in rows(conn, _STATS)}
            readable = True
        except Exception:  # no privilege on the mysql schema: analyze every table
            stats, readable = {}, False
        chosen = []
        for row in tables(conn).values():
            st = stats.get(row["name"])
            if str(row["engine"]).lower() != "innodb" or not readable:
                row["reason"] = ("not InnoDB: ANALYZE is cheap when nothing changed"
                                 if readable else "persistent statistics not readable")
            elif st is None:
                row["reason"] = "no persistent statistics yet"
            elif row["update_time"] is not None and row["update_time"] >= st["last_update"]:
                row["reason"] = (f"changed at {row['update_time']:%Y-%m-%d %H:%M:%S}, after "
                                 f"its statistics ({st['last_update']:%Y-%m-%d %H:%M:%S})")
                row["stats_updated"] = st["last_update"]
            else:
                continue
            chosen.append(row)
        chosen.sort(key=lambda r: r.get("stats_updated") is not None)
        chosen = chosen[:params.max_tables]
    return [Action(r["name"], f"ANALYZE TABLE {quote(r['name'])}", r["reason"], _evidence(r),
                   meta={"op": "analyze", "table": r["name"]}) for r in chosen]


# --- optimize -----------------------------------------------------------------------------------


def plan_optimize(conn: Any, params: Any) -> list[Action]:
    """Tables whose free space (DATA_FREE) is at least ``min_free_bytes`` and
    ``min_free_percent`` of their allocated size, most free space first."""
    per_table = rows(conn, "SELECT @@innodb_file_per_table AS v")[0]["v"]
    if params.tables:
        chosen = list(_chosen(conn, list(params.tables)).values())
    else:
        chosen = []
        for row in sorted(tables(conn).values(), key=lambda r: -(r["free_bytes"] or 0)):
            free = int(row["free_bytes"] or 0)
            size = allocated(row)
            percent = round(100.0 * free / size, 1) if size else 0.0
            row["free_percent"] = percent
            if free < params.min_free_bytes or percent < params.min_free_percent:
                continue
            if str(row["engine"]).lower() == "innodb" and not int(per_table):
                continue  # its DATA_FREE is the shared tablespace's: rebuilding frees nothing
            row["reason"] = (f"{free:,} bytes free, {percent:g}% of {size:,} (thresholds "
                             f"{params.min_free_bytes:,} bytes and {params.min_free_percent:g}%)")
            chosen.append(row)
            if len(chosen) >= params.max_tables:
                break
    local = "NO_WRITE_TO_BINLOG " if params.local else ""
    return [Action(r["name"], f"OPTIMIZE {local}TABLE {quote(r['name'])}", r["reason"],
                   _evidence(r), meta={"op": "optimize", "table": r["name"]}) for r in chosen]


# --- check --------------------------------------------------------------------------------------


def check_tables(conn: Any, params: Any) -> tuple[list[str], list[str], dict[str, Any]]:
    """CHECK TABLE each table (QUICK for ``mode: quick``, else MEDIUM, the server's default
    depth: rows and index checksums); returns the statements, the problems, per-table
    answers."""
    option = "QUICK" if params.mode == "quick" else "MEDIUM"
    statements, problems = [], []
    answers: dict[str, Any] = {}
    for name in sorted(tables(conn)):
        statement = f"CHECK TABLE {quote(name)} {option}"
        statements.append(statement)
        try:
            result = rows(conn, statement)
        except Exception as exc:  # a lock wait on one table; the others are still checked
            problems.append(f"{name}: could not be checked: {exc}")
            continue
        answers[name] = [f"{r['msg_type']}: {r['msg_text']}" for r in result]
        for r in result:
            if str(r["msg_type"]).lower() == "error" or (
                    str(r["msg_type"]).lower() == "status" and str(r["msg_text"]) != "OK"):
                problems.append(f"{name}: {r['msg_text']}")
        if len(problems) >= params.max_errors:
            break
    return statements, problems, {"tables": answers}


# --- execution ----------------------------------------------------------------------------------


def apply(conn: Any, action: Action) -> Metrics:
    table = action.meta["table"]
    before = tables(conn).get(table) if action.meta["op"] == "optimize" else None
    answer = rows(conn, action.statement)
    errors = [str(r["msg_text"]) for r in answer if str(r["msg_type"]).lower() == "error"]
    if errors:
        text = "; ".join(errors)
        if "lock wait timeout" in text.lower():  # answered as a row, not raised
            raise Unavailable(f"{text} (lock_wait_timeout: another session holds the table)")
        raise TaskFailed(text)
    metrics: Metrics = {"tables_processed": 1}
    if before is not None:
        after = tables(conn).get(table) or before
        metrics["bytes_freed"] = max(allocated(before) - allocated(after), 0)
    return metrics
