"""stats: sizes and the largest objects."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import StatsProvider
from wellkept.context import RunContext
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.units import human_bytes


class StatsParams(TaskParams):
    top: int = Field(10, ge=1, le=1000, description="how many of the largest objects to list")


class Stats(Task):
    """Collect sizes and the largest tables and indexes (bounded to the top N).

    SQLite: file size, page size and count, free pages, journal mode, and the top tables (with
    row counts) and indexes by size from the `dbstat` table. The host: CPU, memory, load and
    disk usage. Read-only.
    """

    kind = "stats"
    Params = StatsParams
    requires = (StatsProvider,)
    default_timeout = timedelta(minutes=10)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, StatsProvider)
        report = ctx.connector.collect_stats(self.params)
        m = report.metrics
        if "size_bytes" in m:
            message = (f"{human_bytes(m['size_bytes'])}, {m.get('tables', 0):g} tables, "
                       f"{human_bytes(m.get('free_bytes', 0))} free "
                       f"({m.get('free_percent', 0):g}%)")
        else:
            message = ", ".join(f"{k} {v:g}" for k, v in m.items())
        return TaskResult(message=message, metrics=dict(m), details=report.details)
