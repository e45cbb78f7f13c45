"""cleanup: delete rows past their retention, in short batches."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from wellkept.connector import Purgeable, PurgeRule
from wellkept.context import RunContext
from wellkept.durations import Duration, format_duration
from wellkept.errors import ConnectorError, TaskError
from wellkept.records import Metrics, TaskResult, utcnow
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import plural


class CleanupParams(TaskParams):
    table: str = Field(description="the table to clean (checked against the catalog)")
    date_column: str | None = Field(None, description=(
        "rows whose value here is older than `retention` are deleted"))
    soft_delete_column: str | None = Field(None, description=(
        "instead of date_column: rows soft-deleted longer ago than `retention` are deleted"))
    retention: Duration = Field(description="how long rows are kept, e.g. 30d")
    mode: Literal["delete"] = Field("delete", description="what happens to the old rows")
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="rows per batch (transaction)")
    sleep: Duration = Field(timedelta(0), description=(
        "pause between batches, with no transaction open"))
    max_runtime: Duration | None = Field(None, description=(
        "stop starting new batches after this long; the rest waits for the next run"))

    @model_validator(mode="after")
    def _one_column(self) -> CleanupParams:
        if bool(self.date_column) == bool(self.soft_delete_column):
            raise ValueError("give exactly one of date_column or soft_delete_column")
        return self

    @property
    def column(self) -> str:
        return self.date_column or self.soft_delete_column or ""


class Cleanup(Task):
    """Delete rows older than a retention, in short keyset batches, one transaction each.

    Rows match when `date_column` (or `soft_delete_column`) is older than `now - retention`;
    NULLs never match. The table and column are checked against the catalog and quoted; the
    cutoff is passed as a parameter, in the column's own storage format so an index on it
    stays usable. Each batch selects the next `batch_size` keys past the last one done (no
    rescans), deletes exactly those rows, and commits, so locks are short and work survives an
    interruption. After each batch it records a checkpoint (the last key done and the counts)
    in the history; a run that was interrupted (killed, connection lost, timed out) is resumed
    by the next run of the same task with the same parameters, from that key. Tables without a
    usable key are refused.

    A dry run reports the exact number of matching rows, the oldest and newest matching
    values, the batches it expects and the statements, and deletes nothing.
    """

    kind = "cleanup"
    Params = CleanupParams
    requires = (Purgeable,)
    mutating = True
    resumable = True
    default_timeout = timedelta(hours=2)

    def resume_identity(self) -> dict[str, Any]:
        """The rule, not its pace: a killed run resumes even after batch_size or sleep change."""
        dumped = self.params.model_dump(mode="json")
        return {k: dumped.get(k) for k in ("table", "date_column", "soft_delete_column",
                                           "retention", "mode")}

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Purgeable)
        p: Any = self.params
        rule = PurgeRule(table=p.table, column=p.column, cutoff=utcnow() - p.retention,
                         retention=p.retention)
        estimate = ctx.connector.purge_estimate(rule)
        expected = -(-estimate.rows // p.batch_size)
        details: dict[str, Any] = {
            "table": p.table, "column": p.column, "cutoff": estimate.cutoff,
            "key": estimate.key, "oldest_match": _plain(estimate.oldest),
            "newest_match": _plain(estimate.newest), "expected_batches": expected,
            "batch_size": p.batch_size, "statements": estimate.statements}
        age = format_duration(p.retention)
        if ctx.dry_run:
            return TaskResult(
                message=f"would delete {plural(estimate.rows, 'row')} older than {age} from "
                        f"{p.table} in {plural(expected, 'batch')}",
                metrics={"rows_matched": estimate.rows, "rows_deleted": 0, "rows_archived": 0,
                         "batches": 0}, details=details)
        return self._purge(ctx, rule, estimate.rows, details, age)

    def _purge(self, ctx: RunContext, rule: PurgeRule, matched: int, details: dict[str, Any],
               age: str) -> TaskResult:
        p: Any = self.params
        connector: Any = ctx.connector
        deleted = batches = 0
        last: Any = None
        if ctx.resumed_from and ctx.resumed_from["data"].get("last_key") is not None:
            # the previous run was interrupted: rows up to its last committed batch are gone
            last = ctx.resumed_from["data"]["last_key"]
        timings = {"select": 0.0, "delete": 0.0, "commit": 0.0, "sleep": 0.0}
        longest = 0.0
        started = time.monotonic()
        stopped_by = None
        error: str | None = None
        while True:
            if ctx.cancelled:
                stopped_by = "cancelled"
                break
            if p.max_runtime and time.monotonic() - started >= p.max_runtime.total_seconds():
                stopped_by = "max_runtime"
                break
            try:
                batch = connector.purge_batch(rule, last, p.batch_size)
            except (ConnectorError, TaskError) as exc:
                if not deleted:
                    raise
                error = str(exc)
                break
            if batch.last_key is None:
                break
            deleted += batch.deleted
            batches += 1
            last = batch.last_key
            for name, spent in batch.timings.items():
                timings[name] = timings.get(name, 0.0) + spent
            longest = max(longest, sum(batch.timings.values()))
            percent = 100.0 * deleted / matched if matched else 100.0
            ctx.checkpoint("batch", min(percent, 100.0),
                           {"last_key": _plain(last), "rows_deleted": deleted,
                            "batches": batches})
            ctx.progress(percent, "deleting", f"{deleted} of {matched} rows")
            if p.sleep and not ctx.cancelled:
                t0 = time.monotonic()
                ctx.cancelled_wait(p.sleep.total_seconds())
                timings["sleep"] += time.monotonic() - t0
        details.update({"batches": batches, "last_key": _plain(last),
                        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
                        "longest_batch_seconds": round(longest, 4)})
        if stopped_by:
            details["stopped_by"] = stopped_by
        metrics: Metrics = {"rows_matched": matched, "rows_deleted": deleted, "rows_archived": 0,
                   "batches": batches}
        message = (f"deleted {plural(deleted, 'row')} older than {age} from {p.table} in "
                   f"{plural(batches, 'batch')}" if deleted else
                   f"nothing to delete: no rows in {p.table} older than {age}")
        if stopped_by == "max_runtime":
            message += f" (stopped at max_runtime {format_duration(p.max_runtime)}; " \
                       "the rest is left for the next run)"
        elif stopped_by == "cancelled":
            message += " before it was stopped; the rest is left for the next run"
        if error:
            return TaskResult(status=RunStatus.PARTIAL_FAILURE,
                              message=f"{message}, then failed: {error}", metrics=metrics,
                              details=details, errors=[error])
        return TaskResult(message=message, metrics=metrics, details=details)


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else str(value)
