"""stats: sizes and the largest objects."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import StatsProvider
from wellkept.context import RunContext
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import checked_result
from wellkept.units import human_bytes, plural


class StatsParams(TaskParams):
    top: int = Field(10, ge=1, le=1000, description="how many of the largest objects to list")
    long_query_seconds: float = Field(60.0, ge=0, description=(
        "PostgreSQL, MySQL/MariaDB: report queries running longer than this"))
    catalog_timeout_ms: int = Field(5000, ge=100, description=(
        "PostgreSQL: statement_timeout of each catalog query; a slow section fails alone"))


class Stats(Task):
    """Collect sizes and the largest tables and indexes (bounded to the top N).

    SQLite: file size, page size and count, free pages, journal mode, and the top tables (with
    row counts) and indexes by size from the `dbstat` table. The host: CPU, memory, load and
    disk usage.

    PostgreSQL: database size; the top tables and indexes by size, with scans and dead tuples;
    cache hit ratio; connections by state against max_connections; queries running longer than
    `long_query_seconds`; blocked and blocking sessions; replication lag and slots. Every
    catalog query is bounded (top N, its own statement_timeout); a section that fails is
    reported and the run is a partial failure, but the other sections are still collected.

    MySQL/MariaDB: database size and the free space inside its tables, the top tables by size
    (engine, rows, data, index and free bytes) from `information_schema.TABLES`; threads
    connected and running against `max_connections`; statements running longer than
    `long_query_seconds` from the processlist (the replication threads are not queries);
    on a replica, whether it replicates and its lag (Seconds_Behind_Master), which is
    unknown, not 0, while a replication thread is stopped.

    DuckDB: file and write-ahead log sizes, blocks used and free, and the top tables by
    estimated rows. A file held by another process ends the run `skipped`.

    Redis: memory used against maxmemory, clients, keys per database (and how many have a
    TTL), hit rate (keyspace hits against misses), evicted and expired keys.

    Read-only everywhere.
    """

    kind = "stats"
    Params = StatsParams
    requires = (StatsProvider,)
    default_timeout = timedelta(minutes=10)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, StatsProvider)
        report = ctx.connector.collect_stats(self.params)
        m = report.metrics
        if report.summary:
            message = report.summary
        elif "size_bytes" in m:
            message = (f"{human_bytes(m['size_bytes'])}, {plural(m.get('tables', 0), 'table')}, "
                       f"{human_bytes(m.get('free_bytes', 0))} free "
                       f"({m.get('free_percent', 0):g}%)")
        else:
            message = ", ".join(f"{k} {v:g}" for k, v in m.items()) or "no figures collected"
        return checked_result(message, dict(m), report.details, report.errors)
