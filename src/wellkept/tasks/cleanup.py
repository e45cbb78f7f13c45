"""cleanup: delete rows past their retention, in short batches."""

from __future__ import annotations

import glob
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from wellkept.archive_file import ArchiveFile, decode_key, encode_key, file_format, open_archive
from wellkept.connector import Condition, Purgeable, PurgeEstimate, PurgeRule
from wellkept.context import RunContext
from wellkept.durations import Duration, format_duration
from wellkept.errors import ConnectorError, StopRequested, TaskError, TaskFailed
from wellkept.records import Metrics, TaskResult, stopped_early, utcnow
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import plural


class WhereCondition(TaskParams):
    column: str = Field(description="a column of the table (checked against the catalog)")
    op: Literal["=", "!=", "<", "<=", ">", ">=", "like", "not like", "in", "not in",
                "is null", "is not null"] = Field(description="the comparison")
    value: Any = Field(None, description="the value (a list for in / not in; none for is null)")

    @model_validator(mode="after")
    def _value_fits(self) -> WhereCondition:
        if self.op in ("in", "not in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list as value")
        elif self.op in ("is null", "is not null"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value")
        elif self.value is None or isinstance(self.value, list | dict):
            raise ValueError(f"op {self.op!r} needs one value")
        return self


ARCHIVE_FILE_SUFFIXES = (".jsonl.gz", ".csv.gz", ".parquet", ".jsonl", ".csv", ".json", ".gz")


#: seed 001's DATABASE_CLEANUP_RULES, as presets (`preset: NAME`; any key overrides them)
PRESETS: dict[str, dict[str, Any]] = {
    "django_sessions": {"table": "django_session", "date_column": "expire_date",
                        "retention": "30d", "mode": "delete"},
    "django_admin_log": {"table": "django_admin_log", "date_column": "action_time",
                         "retention": "90d", "mode": "archive",
                         "archive_to": "django_admin_log_archive"},
}


class CleanupParams(TaskParams):
    preset: Literal["django_sessions", "django_admin_log"] | None = Field(None, description=(
        "start from a preset rule (django_sessions: 30d delete; django_admin_log: 90d archive "
        "to django_admin_log_archive); keys given next to it override it"))
    table: str = Field(description="the table to clean (checked against the catalog)")
    date_column: str | None = Field(None, description=(
        "rows whose value here is older than `retention` are deleted"))
    soft_delete_column: str | None = Field(None, description=(
        "instead of date_column: rows soft-deleted longer ago than `retention` are deleted"))
    retention: Duration = Field(description="how long rows are kept, e.g. 30d")
    where: list[WhereCondition] = Field([], description=(
        "extra conditions, all of which a row must meet: [{column, op, value}, …]"))
    unsafe_where: str | None = Field(None, description=(
        "raw SQL added as AND (…): not checked, not quoted; prefer `where`"))
    mode: Literal["delete", "archive"] = Field("delete", description=(
        "delete the rows, or archive them (copy to `archive_to`, then delete, in one "
        "transaction)"))
    archive_to: str | None = Field(None, description=(
        "archive mode: a table in the same database (created like the source when missing), "
        "or a file ending in .jsonl.gz, .csv.gz or .parquet, with {date}, {time}, {table}, "
        "{target}"))
    batch_size: int = Field(5000, ge=1, le=1_000_000, description=(
        "rows in the first batch (transaction); later batches adapt to target_batch_seconds"))
    target_batch_seconds: float = Field(0.5, ge=0, le=60, description=(
        "aim each batch at this long, so locks stay short (0: keep batch_size fixed)"))
    sleep: Duration = Field(timedelta(0), description=(
        "pause between batches, with no transaction open"))
    sleep_coefficient: float = Field(0.0, ge=0, le=100, description=(
        "also pause this many times the last batch's duration (pt-archiver's --sleep-coef)"))
    max_replica_lag: Duration | None = Field(None, description=(
        "pause before each batch while replication lags more than this (PostgreSQL: "
        "pg_stat_replication; MySQL/MariaDB: the target's replica status)"))
    max_runtime: Duration | None = Field(None, description=(
        "stop starting new batches after this long; the rest waits for the next run"))

    @model_validator(mode="before")
    @classmethod
    def _presets_and_aliases(cls, data: Any) -> Any:
        """Apply a preset, and accept seed 001's rule shape: `retention_days: 30` and
        `cleanup_type: delete|archive`."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        preset = out.get("preset")
        if isinstance(preset, str) and preset in PRESETS:
            out = {**PRESETS[preset], **out}
            asked = data.get("mode", data.get("cleanup_type"))  # cleanup_type: seed's mode
            if asked == "delete" and "archive_to" not in data:
                out.pop("archive_to", None)  # the preset's archive table, not asked for
        if "retention_days" in out:
            if "retention" in data:
                raise ValueError("give retention or retention_days, not both")
            days = out.pop("retention_days")
            if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
                raise ValueError("retention_days must be a number of days")
            out["retention"] = f"{days:g}d"
        if "cleanup_type" in out:
            if "mode" in data:
                raise ValueError("give mode or cleanup_type, not both")
            if out["cleanup_type"] not in ("delete", "archive"):
                # said here: the user wrote cleanup_type, and mode's error would name mode
                raise ValueError(f"cleanup_type: {out['cleanup_type']!r} is not allowed; "
                                 "choose one of: 'delete' or 'archive'")
            out["mode"] = out.pop("cleanup_type")
            if out["mode"] == "archive" and not out.get("archive_to"):
                out["archive_to"] = f"{out.get('table', 'table')}_archive"
        return out

    @model_validator(mode="after")
    def _one_column(self) -> CleanupParams:
        if bool(self.date_column) == bool(self.soft_delete_column):
            raise ValueError("give exactly one of date_column or soft_delete_column")
        if self.mode == "archive" and not self.archive_to:
            raise ValueError("mode: archive needs archive_to (a table name)")
        if self.mode == "delete" and self.archive_to:
            raise ValueError("archive_to is only used with mode: archive")
        if (self.archive_to and file_format(self.archive_to) is None
                and self.archive_to.lower().endswith(ARCHIVE_FILE_SUFFIXES)):
            raise ValueError("archive_to: archive files end in .jsonl.gz, .csv.gz or .parquet")
        if self.archive_to and file_format(self.archive_to):
            try:
                self.archive_to.format(date="d", time="t", table="x", target="y")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"archive_to: unknown token {exc}; use {{date}}, {{time}}, "
                                 "{table} or {target}") from None
        if self.archive_to and self.archive_to.lower() == self.table.lower():
            raise ValueError("archive_to must differ from table")
        return self

    def target_problems(self, targets: list[str]) -> list[tuple[str, str]]:
        """An archive file shared by several targets would mix their rows, and each run's
        recovery would check the other databases' batches against its own table."""
        if len(set(targets)) > 1 and self.archive_to and file_format(self.archive_to) \
                and "{target}" not in self.archive_to:
            return [("archive_to", f"the task runs on {len(set(targets))} targets, which would "
                     "share this file; put {target} in its name, e.g. "
                     f"{_with_target(self.archive_to)!r}")]
        return []

    @property
    def column(self) -> str:
        return self.date_column or self.soft_delete_column or ""


def _with_target(name: str) -> str:
    """``archive/ev-{date}.jsonl.gz`` -> ``archive/{target}/ev-{date}.jsonl.gz``."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{{target}}/{base}" if folder else f"{{target}}/{base}"


class Cleanup(Task):
    """Delete rows older than a retention, in short batches, one transaction each.

    Rows match when `date_column` (or `soft_delete_column`) is older than `now - retention`
    (NULLs never match) and meet every `where` condition ({column, op, value}; columns are
    checked, values are parameters; `unsafe_where` adds raw SQL for what `where` cannot
    say). With `mode: archive`, each batch copies its rows to the `archive_to` table
    (created like the source when missing) and deletes them in the same transaction, so a
    row is never deleted without being archived and never archived twice.

    The table and column are checked against the catalog and quoted; the cutoff is passed as
    a parameter, in the column's own storage format so an index on it stays usable. Each
    batch takes up where the last one ended (no rescans): the next keys past the last one
    done, or, on PostgreSQL when a large share of the table matches, the next run of heap
    pages, read once like a single DELETE would. It deletes those rows and commits, so locks
    are short and work survives an interruption. The first batch
    has `batch_size` rows; then the size adapts (at most halving or doubling each time, or
    quadrupling while batches take under a quarter of the target) to
    hold each batch near `target_batch_seconds`. Between batches it pauses `sleep` plus
    `sleep_coefficient` times the last batch's duration, with no transaction open. After
    each batch it records a checkpoint (the last key done and the counts) in the history. A
    run that was interrupted (killed, connection lost, timed out, stopped by a shutdown) is
    recovered from that key, whatever its progress: by the coordinator, by `wellkept
    recover`, or by the next run of the same task with the same rule. An interrupted run
    that had nothing left to delete is only validated. Tables without a usable key are
    refused.

    A dry run reports the exact number of matching rows, the oldest and newest matching
    values, the batches it expects and the statements, and deletes nothing.
    """

    kind = "cleanup"
    Params = CleanupParams
    requires = (Purgeable,)
    mutating = True
    resumable = True
    #: its checkpoints are exact (the last key committed): resuming never beats restarting
    #: by less, so it resumes from any valid checkpoint
    resume_above = 0.0
    priority = 3
    default_timeout = timedelta(hours=2)

    def resume_identity(self) -> dict[str, Any]:
        """The rule, not its pace: a killed run resumes even after batch_size or sleep change."""
        dumped = self.params.model_dump(mode="json")
        return {k: dumped.get(k) for k in ("table", "date_column", "soft_delete_column",
                                           "retention", "mode", "where", "unsafe_where",
                                           "archive_to")}

    def validate(self, ctx: RunContext) -> bool | None:
        """Done when no row matches the rule any more."""
        assert isinstance(ctx.connector, Purgeable)
        return ctx.connector.purge_estimate(self._rule()).rows == 0

    def _rule(self) -> PurgeRule:
        p: Any = self.params
        return PurgeRule(table=p.table, column=p.column, cutoff=utcnow() - p.retention,
                         retention=p.retention,
                         conditions=tuple(Condition(c.column, c.op, c.value) for c in p.where),
                         unsafe_where=p.unsafe_where,
                         archive_table=(p.archive_to if p.mode == "archive"
                                        and not file_format(p.archive_to) else None))

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Purgeable)
        p: Any = self.params
        rule = self._rule()
        archive_path = self._archive_path(ctx) if p.mode == "archive" and \
            file_format(p.archive_to) else None
        # a real run counts what it deletes: the planner's estimate is enough to pace it
        estimate = ctx.connector.purge_estimate(rule, exact=ctx.dry_run)
        expected = -(-estimate.rows // p.batch_size)
        details: dict[str, Any] = {
            "table": p.table, "column": p.column, "cutoff": estimate.cutoff,
            "key": estimate.key, "oldest_match": _plain(estimate.oldest),
            "newest_match": _plain(estimate.newest), "expected_batches": expected,
            "batch_size": p.batch_size, "statements": estimate.statements}
        if archive_path is not None:
            details["archive_file"] = str(archive_path)
        age = format_duration(p.retention)
        if ctx.dry_run:
            return TaskResult(
                message=(f"would {_archive_phrase(details, p)}delete "
                         f"{plural(estimate.rows, 'row')} older than {age} from "
                         f"{p.table} in {plural(expected, 'batch')}"
                         + (f" of {p.batch_size} at first (sizes then adapt)"
                            if p.target_batch_seconds else "") if estimate.rows else
                         _nothing(p, age)),
                metrics={"rows_matched": estimate.rows, "rows_deleted": 0, "rows_archived": 0,
                         "batches": 0}, details=details)
        if not estimate.exact:
            details["rows_estimated"] = estimate.rows
        return self._purge(ctx, rule, estimate, details, age, archive_path)

    def _archive_path(self, ctx: RunContext) -> Path:
        p: Any = self.params
        now = utcnow()
        name = p.archive_to.format(date=now.strftime("%Y-%m-%d"), time=now.strftime("%H%M%S"),
                                   table=p.table, target=ctx.target_name)
        return ctx.resolve_path(name)

    def _archive_siblings(self, ctx: RunContext) -> list[Path]:
        """The files this rule's `archive_to` names on other days (or at other times)."""
        p: Any = self.params
        marks = {"date": "\x01", "time": "\x02"}
        template = p.archive_to.format(date=marks["date"], time=marks["time"], table=p.table,
                                       target=ctx.target_name)
        if not any(m in template for m in marks.values()):
            return []
        digits = {"date": "[0-9]" * 4 + "-" + "[0-9]" * 2 + "-" + "[0-9]" * 2,
                  "time": "[0-9]" * 6}
        pattern = glob.escape(str(ctx.resolve_path(template)))
        for token, mark in marks.items():
            pattern = pattern.replace(mark, digits[token])
        return [Path(found) for found in glob.glob(pattern)]

    def _open_archive(self, ctx: RunContext, rule: PurgeRule, path: Path,
                      details: dict[str, Any]) -> ArchiveFile:
        """Reconcile the archive files a crash may have left ahead of the source: the one
        the interrupted run wrote, every file of this rule's name with another {date} or
        {time} whose last batch is not marked committed (a run killed in its first batch
        has no checkpoint to name its file), and today's."""
        connector: Any = ctx.connector

        def committed(key: Any) -> bool:
            return not connector.key_exists(rule, key)

        previous = (ctx.resumed_from or {}).get("data", {}).get("archive_file")
        others = set(self._archive_siblings(ctx))
        if previous and Path(previous).exists():
            others.add(Path(previous))
        dropped = 0
        for other in sorted(others - {path}):
            earlier = open_archive(other)
            if earlier.pending():
                dropped += earlier.open(committed)
        archive = open_archive(path)
        dropped += archive.open(committed)
        details["archive_rows_dropped"] = dropped  # written, never deleted: taken back out
        return archive

    def _purge(self, ctx: RunContext, rule: PurgeRule, estimate: PurgeEstimate,
               details: dict[str, Any], age: str, archive_path: Path | None) -> TaskResult:
        p: Any = self.params
        matched = estimate.rows
        connector: Any = ctx.connector
        deleted = batches = archived = 0
        size = p.batch_size
        sizes: list[int] = []
        last: Any = None
        if ctx.resumed_from and ctx.resumed_from["data"].get("last_key") is not None:
            # the previous run was interrupted: rows up to its last committed batch are gone
            last = decode_key(ctx.resumed_from["data"]["last_key"])
        timings = {"select": 0.0, "delete": 0.0, "commit": 0.0, "sleep": 0.0}
        longest = 0.0
        started = time.monotonic()
        stopped_by = None
        sink = None
        archive: ArchiveFile | None = None
        offset = {"archive_offset": 0}
        if archive_path is not None:
            try:
                archive = self._open_archive(ctx, rule, archive_path, details)
            except OSError as exc:
                raise TaskFailed(_io_error(archive_path, exc)) from None

            def sink(rows: list[dict[str, Any]], first: Any, last_key: Any) -> None:
                assert archive is not None
                try:
                    offset["archive_offset"] = archive.append(rows, first, last_key)
                except OSError as exc:  # e.g. the disk is full: this batch is rolled back
                    raise TaskFailed(_io_error(archive.path, exc)) from None
        error: str | None = None
        while True:
            if ctx.cancelled:
                stopped_by = "cancelled"
                break
            if ctx.stop_requested:  # asked between batches: the last checkpoint is the spot
                stopped_by = "stop"
                break
            if p.max_runtime and time.monotonic() - started >= p.max_runtime.total_seconds():
                stopped_by = "max_runtime"
                break
            if p.max_replica_lag is not None:
                waited = wait_for_replicas(ctx, p.max_replica_lag.total_seconds())
                timings["replica_wait"] = timings.get("replica_wait", 0.0) + waited
                if ctx.cancelled:
                    stopped_by = "cancelled"
                    break
            try:
                batch = connector.purge_batch(rule, last, size, sink)
            except (ConnectorError, TaskError) as exc:
                if ctx.cancelled:  # the statement was interrupted because time ran out
                    stopped_by = "cancelled"
                    break
                if not deleted:
                    raise
                error = str(exc)
                break
            if batch.last_key is None:
                break
            if archive is not None:  # committed: no later run may take it back out
                try:
                    archive.mark_committed()
                except OSError as exc:  # the batch is done; the next run checks it by key
                    error = _io_error(archive.path, exc)
            deleted += batch.deleted
            archived += batch.archived
            batches += 1
            last = batch.last_key
            for name, spent in batch.timings.items():
                timings[name] = timings.get(name, 0.0) + spent
            took = sum(batch.timings.values())
            longest = max(longest, took)
            sizes.append(size)
            size = next_batch_size(size, took, p.target_batch_seconds)
            # an estimate may fall short of what is really there: never past 99% early
            percent = min(99.0, 100.0 * deleted / matched) if matched else 99.0
            point = {"last_key": _key(last), "rows_deleted": deleted,
                     "rows_archived": archived, "batches": batches}
            if archive_path is not None:
                point["archive_file"] = str(archive_path)
                point["archive_offset"] = offset["archive_offset"]  # bytes (Parquet: parts)
            try:
                ctx.checkpoint("batch", min(percent, 100.0), point)
            except StopRequested:  # a shutdown: stop here, where recovery resumes
                stopped_by = "stop"
                break
            if error:
                break
            rate = deleted / max(time.monotonic() - started, 1e-6)
            about = "" if estimate.exact else "about "
            ctx.progress(percent, "deleting", f"{deleted:,} of {about}{max(matched, deleted):,} "
                                              f"rows, {rate:,.0f} rows/s")
            pause = p.sleep.total_seconds() + p.sleep_coefficient * took
            if pause > 0 and not ctx.cancelled:
                t0 = time.monotonic()
                ctx.cancelled_wait(pause)
                timings["sleep"] += time.monotonic() - t0
        details.update({"batches": batches, "last_key": _key(last),
                        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
                        "longest_batch_seconds": round(longest, 4),
                        "batch_sizes": {"first": sizes[0] if sizes else size,
                                        "min": min(sizes, default=size),
                                        "max": max(sizes, default=size),
                                        "last": sizes[-1] if sizes else size}})
        if stopped_by:
            details["stopped_by"] = stopped_by
        if not estimate.exact:
            # every matching row was deleted, unless the run stopped early: then the rest is
            # only known by the estimate
            finished = not stopped_by and not error
            matched = deleted if finished else max(matched, deleted)
            if not finished:
                details["rows_matched_estimated"] = True
        metrics: Metrics = {"rows_matched": matched, "rows_deleted": deleted,
                            "rows_archived": archived, "batches": batches}
        target = details.get("archive_file", p.archive_to)
        verb = f"archived to {target} and deleted" if p.mode == "archive" else "deleted"
        message = (f"{verb} {plural(deleted, 'row')} older than {age} from {p.table} in "
                   f"{plural(batches, 'batch')}" if deleted else
                   _nothing(p, age))
        if stopped_by == "max_runtime":
            message += f" (stopped at max_runtime {format_duration(p.max_runtime)}; " \
                       "the rest is left for the next run)"
        elif stopped_by == "cancelled" and not batches:
            # not "nothing to delete": the rows are there, the run stopped before reaching them
            message = (f"stopped before its first batch committed: nothing deleted from "
                       f"{p.table}; the rows older than {age} are left for the next run")
        elif stopped_by == "cancelled":
            return stopped_early(
                f"{verb} {plural(deleted, 'row')} older than {age} from {p.table} in "
                f"{plural(batches, 'batch')} before it was stopped; the rest is left for the "
                "next run", metrics, details)
        elif stopped_by == "stop":
            return stopped_early(message, metrics, details, at_checkpoint=ctx.stop_reason)
        if stopped_by == "cancelled":  # before any batch committed
            return TaskResult(status=RunStatus.FAILED, message=message, metrics=metrics,
                              details=details, errors=["stopped before any batch committed"])
        if error:
            return TaskResult(status=RunStatus.PARTIAL_FAILURE,
                              message=f"{message}, then failed: {error}", metrics=metrics,
                              details=details, errors=[error])
        return TaskResult(message=message, metrics=metrics, details=details)


MIN_BATCH, MAX_BATCH = 10, 1_000_000
LAG_CHECK_SECONDS = 1.0


def wait_for_replicas(ctx: RunContext, max_lag: float) -> float:
    """Pause (with no transaction open) while the replicas lag more than ``max_lag``;
    return the seconds spent waiting. Unknown lag (no replicas) does not hold the run."""
    started = time.monotonic()
    while not ctx.cancelled:
        lag = ctx.connector.replication_lag()
        if lag is None or lag <= max_lag:
            break
        ctx.progress(None, "waiting for replicas", f"lag {lag:.1f}s > {max_lag:g}s")
        ctx.cancelled_wait(LAG_CHECK_SECONDS)
    return time.monotonic() - started


def next_batch_size(size: int, took: float, target: float) -> int:
    """Steer the batch size toward ``target`` seconds per batch: at most halving per step
    (one slow batch, a checkpoint or a lock wait, must not collapse it) and at most doubling,
    or quadrupling while a batch takes under a quarter of the target (so that the first,
    small batches reach the target in a few steps rather than many short transactions)."""
    if target <= 0 or took <= 0:
        return size
    growth = 4.0 if took < target / 4 else 2.0
    factor = min(growth, max(0.5, target / took))
    return max(MIN_BATCH, min(MAX_BATCH, int(size * factor)))


def _io_error(path: Path, exc: OSError) -> str:
    return f"writing the archive {path}: {exc.strerror or exc}"


def _nothing(p: Any, age: str) -> str:
    """Nothing matched: with conditions, old rows may well be there, just none that meet them."""
    return (f"nothing to delete: no rows in {p.table} older than {age}"
            + (" meet the where conditions" if p.where or p.unsafe_where else ""))


def _archive_phrase(details: dict[str, Any], p: Any) -> str:
    if p.mode != "archive":
        return ""
    return f"archive to {details.get('archive_file', p.archive_to)} and "


def _key(value: Any) -> Any:
    """A key or cursor for the checkpoint: a binary key as ``{"base64": …}``, which
    ``decode_key`` turns back into the same bytes (its text would resume at another key)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return encode_key(value)
    return _plain(value)


def _plain(value: Any) -> Any:
    """A JSON-ready key or cursor (a connector's cursor may be a dict, e.g. a page walk's)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, int | float | str) else str(value)
