"""bloat: estimate wasted space in tables and indexes."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import BloatEstimator
from wellkept.context import RunContext
from wellkept.durations import Duration
from wellkept.fs.sizes import ByteSize
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import checked_result
from wellkept.units import human_bytes


class BloatParams(TaskParams):
    top: int = Field(20, ge=1, le=1000, description="list the worst N tables and N indexes")
    min_bytes: ByteSize = Field(0, ge=0, description=(
        "list only relations with at least this many estimated wasted bytes"))
    exact: bool = Field(False, description=(
        "confirm the worst ones exactly with pgstattuple_approx / pgstatindex"))
    exact_top: int = Field(5, ge=1, description="how many to confirm exactly")
    exact_budget: Duration = Field(timedelta(seconds=30), description=(
        "stop confirming once this much time is spent"))
    install_extension: bool = Field(False, description=(
        "allow CREATE EXTENSION pgstattuple when it is missing"))
    catalog_timeout_ms: int = Field(10000, ge=100, description=(
        "statement_timeout of each estimate query"))


class Bloat(Task):
    """Estimate the space wasted in tables and btree indexes, worst first.

    PostgreSQL: a statistical estimate from the catalog (pg_class, pg_stats), in the style of
    check_postgres and ioguix's queries: no heap scan, cheap on thousands of tables, but it
    needs recent statistics (run `analyze` first) and counts alignment padding as waste. With
    `exact: true` it confirms the worst `exact_top` relations with pgstattuple_approx (tables)
    and pgstatindex (indexes), which read the relation under an ACCESS SHARE lock, within
    `exact_budget`; the pgstattuple extension is installed only with `install_extension: true`
    (and never on a dry run). Read-only otherwise.
    """

    kind = "bloat"
    Params = BloatParams
    requires = (BloatEstimator,)
    default_timeout = timedelta(minutes=30)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, BloatEstimator)
        params = self.params
        if ctx.dry_run and getattr(params, "install_extension", False):
            # a dry run changes nothing, not even an extension
            params = params.model_copy(update={"install_extension": False})
        report = ctx.connector.estimate_bloat(params)
        m = report.metrics
        message = (f"tables waste about {human_bytes(m.get('tables_bloat_bytes', 0))} "
                   f"(worst {m.get('worst_table_bloat_percent', 0):g}%), indexes about "
                   f"{human_bytes(m.get('indexes_bloat_bytes', 0))} "
                   f"(worst {m.get('worst_index_bloat_percent', 0):g}%)")
        return checked_result(message, dict(m), report.details, report.errors, "estimate")
