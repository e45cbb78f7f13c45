"""MySQL/MariaDB figures: sizes, connections, long queries and replication lag.

Each section is its own statement and fails alone (its error is reported, the rest still is).
Sizes come from ``information_schema.TABLES`` (one query, top N by size); connections from
``SHOW GLOBAL STATUS`` against ``max_connections``; long queries from the processlist;
replication from this server's channels (``mysql_replication``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wellkept.connector import StatsReport
from wellkept.connectors.mysql_maintenance import rows, tables
from wellkept.records import Metrics
from wellkept.units import human_bytes


def status(conn: Any, *names: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ("
                    + ", ".join(["%s"] * len(names)) + ")", names)
        return {str(k).lower(): int(v) for k, v in cur.fetchall()}


def connections(conn: Any) -> dict[str, Any]:
    figures = status(conn, "Threads_connected", "Threads_running", "Max_used_connections")
    limit = int(rows(conn, "SELECT @@max_connections AS v")[0]["v"])
    used = figures.get("threads_connected", 0)
    return {"threads_connected": used, "threads_running": figures.get("threads_running", 0),
            "max_used_connections": figures.get("max_used_connections", 0),
            "max_connections": limit, "percent": round(100.0 * used / max(limit, 1), 1)}


#: threads that are not a client's statement: idle sessions, the event scheduler, a primary's
#: binlog senders, and a replica's own replication threads (whose TIME is the applier's lag
#: or its idle time: the lag is its own figure, not a long query). MySQL 8 shows its
#: replication threads as 'Connect' of 'system user', MariaDB as 'Slave_*'.
_NOT_QUERIES = """COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                      'Slave_IO', 'Slave_SQL', 'Slave_worker')
  AND USER <> 'system user' AND ID <> CONNECTION_ID()"""

_LONG = f"""SELECT ID AS id, USER AS user, DB AS db, COMMAND AS command, TIME AS seconds,
       STATE AS state, LEFT(INFO, 200) AS query
FROM information_schema.PROCESSLIST
WHERE {_NOT_QUERIES} AND TIME >= %s
ORDER BY TIME DESC LIMIT %s"""


def long_queries(conn: Any, seconds: float, top: int) -> list[dict[str, Any]]:
    return rows(conn, _LONG, (seconds, top))


def longest_query_seconds(conn: Any) -> float:
    """The longest statement running in this target's database (the health figure)."""
    found = rows(conn, "SELECT MAX(TIME) AS s FROM information_schema.PROCESSLIST "
                       f"WHERE {_NOT_QUERIES} AND DB = DATABASE()")
    value = found[0]["s"] if found else None
    return float(value) if value is not None else 0.0


def stats(conn: Any, params: Any, replication: Callable[[], dict[str, Any]]) -> StatsReport:
    details: dict[str, Any] = {}
    errors: list[str] = []

    def section(name: str, fn: Callable[[], Any]) -> None:
        try:
            details[name] = fn()
        except Exception as exc:  # one section failing must not hide the others
            errors.append(f"{name}: {exc}")

    def database() -> dict[str, Any]:
        found = list(tables(conn).values())
        size = sum(int(t["data_bytes"] or 0) + int(t["index_bytes"] or 0) for t in found)
        free = sum(int(t["free_bytes"] or 0) for t in found)
        top = sorted(found, key=lambda t: -(int(t["data_bytes"] or 0)
                                            + int(t["index_bytes"] or 0)))[:params.top]
        details["top_tables"] = [
            {"table": t["name"], "engine": t["engine"], "rows": t["table_rows"],
             "data_bytes": t["data_bytes"], "index_bytes": t["index_bytes"],
             "free_bytes": t["free_bytes"]} for t in top]
        name = rows(conn, "SELECT DATABASE() AS db")[0]["db"]
        return {"name": name, "size_bytes": size, "free_bytes": free, "tables": len(found)}

    section("database", database)
    section("connections", lambda: connections(conn))
    section("long_queries", lambda: long_queries(conn, params.long_query_seconds, params.top))
    section("replication", replication)
    metrics: Metrics = {}
    parts: list[str] = []
    db = details.get("database") or {}
    if db:
        metrics.update(size_bytes=db["size_bytes"], free_bytes=db["free_bytes"],
                       tables=db["tables"])
        parts.append(f"{human_bytes(db['size_bytes'])} in {db['tables']} tables, "
                     f"{human_bytes(db['free_bytes'])} free inside them")
    conns = details.get("connections") or {}
    if conns:
        metrics.update(connections=conns["threads_connected"],
                       connection_percent=conns["percent"])
        parts.append(f"{conns['threads_connected']} connections ({conns['percent']:g}% of "
                     "max_connections)")
    if isinstance(details.get("long_queries"), list):
        longest = details["long_queries"]
        metrics["long_queries"] = len(longest)
        if longest:
            metrics["query_seconds"] = float(longest[0]["seconds"])
        parts.append(f"{len(longest)} long-running queries")
    repl = details.get("replication") or {}
    if repl.get("replicating") is not None:  # a replica
        metrics["replicating"] = int(bool(repl["replicating"]))
    if repl.get("lag_seconds") is not None:
        metrics["replication_lag_seconds"] = repl["lag_seconds"]
        parts.append(f"replication lag {repl['lag_seconds']:g}s")
    elif repl.get("replicating") is False:  # the server's NULL: unknown, never reported as 0
        parts.append(f"replica not replicating ({repl['problem']}), lag unknown")
    return StatsReport(metrics=metrics, details=details, errors=errors,
                       summary=", ".join(parts))
