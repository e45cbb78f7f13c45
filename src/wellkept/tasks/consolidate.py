"""consolidate: merge daily data files into monthly ones (DuckDB), duplicates dropped, counts
proven before any source is removed."""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from wellkept.connector import FileTree
from wellkept.consolidation import naming
from wellkept.consolidation.merge import Merger, file_format
from wellkept.context import RunContext
from wellkept.errors import StopRequested, TaskFailed
from wellkept.fs import is_utf8, shown_name
from wellkept.fs.busy import BusyFiles
from wellkept.records import Metrics, TaskResult, stopped_early, utcnow
from wellkept.task import Task, TaskParams
from wellkept.tasks import _files
from wellkept.units import human_bytes, plural


class ConsolidateParams(TaskParams):
    path: str = Field(description="the folder of the daily files (relative to the config's)")
    pattern: str = Field(description=(
        "the daily files' names, with one {date} token and optional * wildcards, e.g. "
        "'prices-{date}.parquet' or 'trades_*_{date}.csv'"))
    date_format: str = Field("%Y-%m-%d", description=(
        "how {date} is written, in strftime codes (%Y%m%d for 20261130)"))
    output: str = Field(description=(
        "the monthly file's name (in `path`, or a sub-folder of it), with one {month} "
        "token: 'prices-{month}.parquet'; .parquet, .csv or .csv.gz"))
    month_format: str = Field("%Y-%m", description="how {month} is written")
    order_by: list[str] = Field([], description=(
        "columns to sort the monthly file by (checked against the files' columns)"))
    include_current_month: bool = Field(False, description=(
        "also merge the month in progress (by default only months that have ended)"))
    keep_sources: bool = Field(False, description=(
        "keep the daily files after a verified merge (they are deleted by default)"))

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        naming.check_pattern(value, "date")
        if file_format(value.replace("{date}", "")) is None:
            raise ValueError(f"{value!r}: daily files end in .parquet, .csv or .csv.gz")
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        if value.count("{month}") != 1 or ".." in value.split("/") or value.startswith("/"):
            raise ValueError(f"{value!r} must hold {{month}} once and stay inside `path`")
        if file_format(value) is None:
            raise ValueError(f"{value!r}: monthly files end in .parquet, .csv or .csv.gz")
        return value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        return naming.check_format(value)

    @model_validator(mode="after")
    def _formats(self) -> ConsolidateParams:
        if file_format(self.pattern.replace("{date}", "")) != file_format(self.output):
            raise ValueError("output: keep the daily files' format (parquet to parquet, "
                             "csv to csv)")
        return self


class Consolidate(Task):
    """Merge daily data files (Parquet or CSV) into monthly files, with DuckDB.

    Daily files are found in `path` by `pattern`, whose `{date}` token is read with
    `date_format`; each month that has ended (or also the current one, with
    `include_current_month`) is merged into `output`, whose `{month}` token is the month
    (`month_format`). Columns are matched by name across files (a file with an extra column
    gets NULLs elsewhere); CSV values are kept as the text they are. Exact duplicate rows
    are dropped. Before any source is removed the
    merge is proven: the monthly file's row count must equal the rows read minus the
    duplicates (counted apart), and no input row may be missing from it (`EXCEPT` is empty);
    the file is written under a temporary name, fsynced and renamed into place, and only then
    are the daily files deleted (unless `keep_sources`). A month whose check fails keeps its
    sources, and the run is a partial failure.

    It can be resumed: each finished month is checkpointed, and a month interrupted after its
    monthly file was written but before its sources were deleted is merged again with that
    file as one of its inputs, which drops the rows already there as duplicates, so nothing
    is counted or written twice. Daily files another process has open for writing hold their
    month back to the next run.

    Runs on the implicit `host` target (paths relative to the config file's folder) or a
    `files:///` target (paths inside its folder). A dry run reads the files and reports, per
    month, the inputs, rows, duplicates and the output it would write; it writes nothing.
    """

    kind = "consolidate"
    Params = ConsolidateParams
    requires = (FileTree,)
    mutating = True
    resumable = True
    default_timeout = timedelta(hours=2)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, ConsolidateParams)
        folder = _files.resolve(ctx, p.path)
        months, ignored = self._months(folder, p)
        done = {m: c for m, c in ((ctx.resumed_from or {}).get("data", {})
                                  .get("months", {})).items()}
        busy = BusyFiles([folder])
        fmt = file_format(p.output) or "parquet"
        merger = Merger(file_format(p.pattern.replace("{date}", "")) or "parquet")
        # files_matched and rows_read: what was found and read (a dry run reads it all too);
        # the rest: what was done (zero in a dry run, whose figures are in details.months)
        counts = {"files_matched": 0, "files_processed": 0, "files_deleted": 0, "rows_read": 0,
                  "rows_written": 0, "duplicates_dropped": 0, "months": 0, "bytes_written": 0,
                  "bytes_freed": 0}
        rows: list[dict[str, Any]] = []
        errors: list[str] = []
        stopped = shutdown = False
        try:
            for month, files in sorted(months.items()):
                if ctx.cancelled:  # a time limit, Ctrl-C, SIGTERM: between months
                    if not counts["months"]:
                        ctx.check_cancelled()  # nothing merged yet: the run failed
                    # the merged months are done: say so (the record is then a partial
                    # failure, incomplete, and the next run goes on from the checkpoint)
                    stopped = True
                    break
                key = month.strftime("%Y-%m")
                row: dict[str, Any] = {"month": key, "inputs": len(files)}
                rows.append(row)
                if key in done:
                    row.update(done[key], status="done before (resumed)")
                    continue
                holders = [f.name for f in files if busy.why(f.stat())]
                if holders:
                    row.update(status="skipped", reason=f"{holders[0]} is open for writing")
                    continue
                try:
                    self._month(ctx, p, merger, folder, month, files, fmt, row, counts)
                except (TaskFailed, OSError) as exc:
                    row.update(status="failed", error=str(exc))
                    errors.append(f"{key}: {exc}")
                    continue
                if not ctx.dry_run:
                    done[key] = {k: row[k] for k in ("rows_read", "duplicates", "rows_written")}
                    try:
                        ctx.checkpoint("month", 100.0 * len(done) / max(len(months), 1),
                                       {"months": done})
                    except StopRequested:  # a shutdown: report the months merged, then stop
                        shutdown = True
                        break
        finally:
            merger.close()
        metrics: Metrics = dict(counts)
        details = {"path": str(folder), "months": rows, "ignored": ignored[:50]}
        message = self._message(ctx, counts, rows)
        if shutdown:
            return stopped_early(message, metrics, details, at_checkpoint=ctx.stop_reason)
        if stopped:
            return stopped_early(f"{message}; stopped before the last month, the rest is left "
                                 "for the next run", metrics, details)
        # a dry run ends as the run would: a partial failure when some month would merge
        some = bool(counts["months"]) or any(r.get("status") == "would merge" for r in rows)
        return _files.result(message, metrics, details, errors, some_done=some,
                             noun="month", tail=" failed (sources kept)")

    def _months(self, folder: Path, p: ConsolidateParams
                ) -> tuple[dict[date, list[Path]], list[str]]:
        regex = naming.name_regex(p.pattern, p.date_format)
        this_month = utcnow().date().replace(day=1)
        months: dict[date, list[Path]] = defaultdict(list)
        ignored: list[str] = []
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            raise TaskFailed(f"no folder at {folder}") from None
        for name in names:
            day = naming.date_of(name, regex, p.date_format)
            if day is None:
                continue
            try:
                st = os.lstat(folder / name)
            except FileNotFoundError:  # removed since the listing (another cleanup)
                continue
            if not stat.S_ISREG(st.st_mode):
                ignored.append(f"{name}: not a regular file (symlinks are not followed)")
                continue
            if not is_utf8(name):  # DuckDB takes paths as UTF-8: the month would fail forever
                ignored.append(f"{shown_name(name)}: "
                               "its name is not UTF-8, which the reader cannot open; rename "
                               "it to merge it")
                continue
            month = day.replace(day=1)
            if month >= this_month and not p.include_current_month:
                continue
            months[month].append(folder / name)
        # a monthly file whose name the daily pattern also matches (date_format %Y-%m and
        # output sales-{month}.csv) is an output, never a source: it would be deleted as one
        # right after being written
        outputs = {folder / naming.month_name(p.output, m, p.month_format) for m in months}
        for month, files in list(months.items()):
            ignored += [f"{f.name}: a monthly output file, not a daily one"
                        for f in files if f in outputs]
            months[month] = [f for f in files if f not in outputs]
            if not months[month]:
                del months[month]
        return months, ignored

    def _month(self, ctx: RunContext, p: ConsolidateParams, merger: Merger, folder: Path,
               month: date, files: list[Path], fmt: str, row: dict[str, Any],
               counts: dict[str, int]) -> None:
        final = folder / naming.month_name(p.output, month, p.month_format)
        if not ctx.dry_run:  # a dry run makes nothing, not even the output's folder
            final.parent.mkdir(parents=True, exist_ok=True)
        inputs = [*files, final] if final.exists() else list(files)
        columns = merger.columns(inputs)
        unknown = [c for c in p.order_by if c not in columns]
        if unknown:
            raise TaskFailed(f"order_by: no column {unknown[0]!r}; columns: {', '.join(columns)}")
        expected = merger.count(inputs)
        source_bytes = sum(f.stat().st_size for f in files)
        before = final.stat().st_size if final.exists() else 0
        row.update(output=str(final), rows_read=expected.rows_read,
                   duplicates=expected.duplicates, rows_written=expected.rows_distinct,
                   merged_existing_output=final in inputs, source_bytes=source_bytes)
        ctx.progress(None, "merging", f"{month:%Y-%m}: {len(files)} files, "
                                      f"{expected.rows_read:,} rows")
        if ctx.dry_run:
            row["status"] = "would merge"
        else:
            size = merger.write(inputs, final, p.order_by, fmt, expected)
            row.update(status="merged", output_bytes=size)
            counts["bytes_written"] += size
            if not p.keep_sources:
                for f in files:
                    f.unlink()
                    counts["files_deleted"] += 1
                counts["bytes_freed"] += max(source_bytes - (size - before), 0)
        counts["files_matched"] += len(files)
        counts["rows_read"] += expected.rows_read
        if ctx.dry_run:
            return
        counts["months"] += 1
        counts["files_processed"] += len(files)
        counts["duplicates_dropped"] += expected.duplicates
        counts["rows_written"] += expected.rows_distinct

    def _message(self, ctx: RunContext, counts: dict[str, int],
                 rows: list[dict[str, Any]]) -> str:
        if ctx.dry_run:  # the months it would merge, as details.months shows them
            planned = [r for r in rows if r.get("status") == "would merge"]
            figures = {"months": len(planned), "files": counts["files_matched"],
                       "duplicates": sum(r["duplicates"] for r in planned),
                       "written": sum(r["rows_written"] for r in planned)}
        else:
            figures = {"months": counts["months"], "files": counts["files_processed"],
                       "duplicates": counts["duplicates_dropped"],
                       "written": counts["rows_written"]}
        if not figures["months"]:
            return "nothing to consolidate: no ended month with daily files"
        verb, dropped, written = (("would merge", "to drop", "to write") if ctx.dry_run
                                  else ("merged", "dropped", "written"))
        text = (f"{verb} {plural(figures['files'], 'daily file')} into "
                f"{plural(figures['months'], 'monthly file')}: {counts['rows_read']:,} rows read, "
                f"{figures['duplicates']:,} duplicates {dropped}, "
                f"{figures['written']:,} {written}")
        if not ctx.dry_run and counts["files_deleted"]:
            text += f"; sources deleted, {human_bytes(counts['bytes_freed'])} freed"
        return text
