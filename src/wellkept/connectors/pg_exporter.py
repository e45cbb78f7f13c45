"""wellkept's PostgreSQL figures under postgres_exporter's metric names.

Only the names whose meaning matches exactly are used (see the PostgreSQL field notes, §5):
``pg_up``, ``pg_database_size_bytes``, ``pg_stat_database_numbackends``,
``pg_settings_max_connections``, ``pg_replication_is_replica`` and
``pg_replication_lag_seconds``. They carry postgres_exporter's ``datname`` label where it has
one, plus ``target``, since one wellkept serves many servers. No psycopg import: ``wellkept
metrics`` must work where the driver is not installed.
"""

from __future__ import annotations

from typing import Any

from wellkept.connector import ExporterSample


def samples(target: str, stats: dict[str, Any] | None, up: bool | None) -> list[ExporterSample]:
    out: list[ExporterSample] = []
    if up is not None:
        out.append(("pg_up", "Whether the last health check reached the server (1) or not",
                    {"target": target}, 1.0 if up else 0.0))
    if not stats:
        return out
    details = stats.get("details") or {}

    def section(name: str) -> dict[str, Any]:
        value = details.get(name)
        return value if isinstance(value, dict) else {}

    db = section("database")
    datname = str(db.get("name") or "")
    if isinstance(db.get("size_bytes"), int | float):
        out.append(("pg_database_size_bytes", "Disk space used by the database",
                    {"datname": datname, "target": target}, float(db["size_bytes"])))
    # postgres_exporter reads pg_stat_database.numbackends: this database's backends, not the
    # server's client sessions (``connections.total``, which counts every database)
    if isinstance(db.get("backends"), int | float):
        out.append(("pg_stat_database_numbackends", "Number of backends currently connected",
                    {"datname": datname, "target": target}, float(db["backends"])))
    conns = section("connections")
    if isinstance(conns.get("max_connections"), int | float):
        out.append(("pg_settings_max_connections", "Server setting max_connections",
                    {"target": target}, float(conns["max_connections"])))
    repl = section("replication")
    if isinstance(repl.get("is_replica"), bool):
        out.append(("pg_replication_is_replica", "Whether the server is a replica (1) or not",
                    {"target": target}, 1.0 if repl["is_replica"] else 0.0))
    if isinstance(repl.get("lag_seconds"), int | float):
        out.append(("pg_replication_lag_seconds", "Replication lag behind the primary",
                    {"target": target}, float(repl["lag_seconds"])))
    return out
