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
        "PostgreSQL: report queries running longer than this"))
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
