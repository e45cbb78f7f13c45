"""export: a query's result written to CSV, JSONL or Parquet, with a retention."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, field_validator, model_validator

from wellkept.connector import QueryReader
from wellkept.context import RunContext
from wellkept.durations import Duration
from wellkept.errors import TaskFailed
from wellkept.exports import naming
from wellkept.exports.columns import ColumnSpec, Formatter
from wellkept.exports.writers import RowWriter, format_of, parquet_from_jsonl
from wellkept.fs import temp_name
from wellkept.fs.compress import fsync_folder
from wellkept.fs.sizes import check_mode
from wellkept.records import Metrics, TaskResult, utcnow
from wellkept.task import Task, TaskParams
from wellkept.units import human_bytes, plural


class ExportColumn(TaskParams):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(description="the column's name in the file (its CSV header)")
    source: str | None = Field(None, alias="from", description=(
        "the query's column it is taken from (default: the same name)"))
    value: Any = Field(None, description="a constant instead of a source column")
    date_format: str | None = Field(None, description=(
        "strftime format for a date or timestamp, e.g. '%m/%d/%Y' or '%H:%M:%S'"))
    decimals: int | None = Field(None, ge=0, le=18, description=(
        "round numbers to this many places (half to even), written with exactly as many"))
    map: dict[str, Any] = Field({}, description=(
        "replace values: {buy: B, sell: S}; others pass through"))

    def spec(self) -> ColumnSpec:
        source = None if self.value is not None else (self.source or self.name)
        return ColumnSpec(self.name, source, self.value, self.date_format, self.decimals,
                          dict(self.map))


class ExportParams(TaskParams):
    query: str = Field(description=(
        "the SQL whose result is exported; run read-only (see docs/tasks/export.md)"))
    path: str = Field(description=(
        "the file to write, with tokens {date}, {time}, {datetime}, {task}, {target}, "
        "{now:%Y%m%d}; .csv, .jsonl or .parquet, plus .gz or .zst for compression"))
    columns: list[ExportColumn] = Field([], description=(
        "the file's columns, in order: [{name, from, value, date_format, decimals, map}]; "
        "default: every column of the query as it is"))
    date_format: str | None = Field(None, description="default format of dates (ISO 8601)")
    datetime_format: str | None = Field(None, description=(
        "default format of timestamps (ISO 8601); timestamps with a zone are shown in the "
        "config's timezone"))
    decimals: int | None = Field(None, ge=0, le=18, description=(
        "default rounding of non-integer numbers (a column's own decimals apply to all)"))
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV: the separator")
    header: bool = Field(True, description="CSV: write the header line")
    null: str = Field("", description="CSV: how a NULL is written")
    file_mode: str = Field("0600", description="octal mode of the file (exports are data)")
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="rows fetched at a time")
    keep_last: int | None = Field(None, ge=1, description=(
        "retention: keep this many newest exports of this path template"))
    keep_days: Duration | None = Field(None, description=(
        "retention: delete exports of this path template older than this"))
    overwrite: bool = Field(False, description="replace a file of the same name")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        naming.check_template(value)
        if format_of(value) is None:
            raise ValueError(f"{value!r}: exports end in .csv, .jsonl or .parquet (text "
                             "formats may add .gz or .zst)")
        return value

    @field_validator("file_mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        return check_mode(value, 0o777)

    @model_validator(mode="after")
    def _consistent(self) -> ExportParams:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: two columns have the same name")
        if not self.query.strip():
            raise ValueError("query: empty")
        return self


class Export(Task):
    """Write a query's result to a CSV, JSON-lines or Parquet file, with dated names and a
    retention.

    The query is the user's own SQL, run read-only where the engine allows it: PostgreSQL in
    a `READ ONLY` transaction through a server-side cursor, MySQL/MariaDB in `START
    TRANSACTION READ ONLY` through an unbuffered cursor, SQLite on a connection opened
    read-only, DuckDB on a read-only connection. Rows are streamed `batch_size` at a time
    into the file, never held whole in memory.

    `columns` maps the result to the file: each column has a `name`, comes `from` a source
    column or is a constant `value`, and may have a `date_format` (strftime), `decimals`
    (rounded half to even, written with that many places) and a value `map`. Timestamps with
    a zone are shown in the config's timezone. Without `columns`, every column is written as
    it is. The path may hold `{date}`, `{time}`, `{datetime}`, `{task}`, `{target}` and
    `{now:%Y%m%d}`; its ending picks the format: `.csv`, `.jsonl`, `.parquet`, and `.gz` or
    `.zst` after a text format compresses it. The file is written under a temporary name,
    fsynced and renamed into place with `file_mode` (0600 by default). An existing file of
    the same name is an error unless `overwrite`.

    After a successful export, earlier exports of the same path template past `keep_last`
    or `keep_days` are deleted (only regular files the template could have made).

    A dry run runs the query and formats and compresses every row into a counter, so it
    reports the exact rows and bytes it would write and the files retention would delete,
    and writes nothing.
    """

    kind = "export"
    Params = ExportParams
    requires = (QueryReader,)
    mutating = True
    changes_target = False  # it only reads the target; it writes files
    default_timeout = timedelta(hours=1)

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, ExportParams)
        assert isinstance(ctx.connector, QueryReader)
        zone = ZoneInfo(ctx.settings.timezone if ctx.settings else "UTC")
        now = utcnow().astimezone(zone)
        path = ctx.resolve_path(naming.render(p.path, now, ctx.task_name, ctx.target_name))
        fmt, compression = format_of(path.name) or ("csv", None)
        if path.exists() and not p.overwrite and not ctx.dry_run:
            raise TaskFailed(f"{path} already exists (set overwrite: true to replace it, or "
                             "put {time} in the path)")
        ctx.issued(p.query)
        staging = Path(tempfile.mkdtemp(prefix="wellkept-export-"))
        try:
            rows, size, tmp = self._write(ctx, p, path, fmt, compression, zone, staging)
            if not ctx.dry_run:
                assert tmp is not None
                os.chmod(tmp, int(p.file_mode, 8))
                os.replace(tmp, path)
                fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    fsync_folder(fd)
                finally:
                    os.close(fd)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        pruned = self._retention(ctx, p, path)
        metrics: Metrics = {
            "rows_matched": rows, "files_processed": 0 if ctx.dry_run else 1,
            "bytes_written": 0 if ctx.dry_run else size,
            "files_deleted": 0 if ctx.dry_run else len(pruned),
            "bytes_freed": 0 if ctx.dry_run else sum(f.bytes for f in pruned)}
        details: dict[str, Any] = {
            "path": str(path), "format": fmt, "compression": compression, "rows": rows,
            "bytes": size, "retention": [{"path": str(f.path), "bytes": f.bytes,
                                          "reason": f.reason} for f in pruned[:100]]}
        verb = "would write" if ctx.dry_run else "wrote"
        message = (f"{verb} {plural(rows, 'row')} to {path.name} ({human_bytes(size)})"
                   + (f"; {'would delete' if ctx.dry_run else 'deleted'} "
                      f"{plural(len(pruned), 'old export')}" if pruned else ""))
        return TaskResult(message=message, metrics=metrics, details=details)

    def _write(self, ctx: RunContext, p: ExportParams, path: Path, fmt: str,
               compression: str | None, zone: ZoneInfo, staging: Path
               ) -> tuple[int, int, Path | None]:
        """Stream the rows; return (rows, bytes, the temporary file to rename)."""
        assert isinstance(ctx.connector, QueryReader)
        tmp = None if ctx.dry_run else path.with_name(temp_name(path.name))
        if tmp is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
        try:
            text_target = staging / "rows.jsonl" if fmt == "parquet" else tmp
            rows = 0
            with contextlib.ExitStack() as stack:
                fh = (stack.enter_context(open(text_target, "xb")) if text_target is not None
                      else None)
                stream = stack.enter_context(ctx.connector.read_query(p.query, p.batch_size))
                formatter = Formatter([c.spec() for c in p.columns], stream.columns,
                                      zone=zone, date_format=p.date_format,
                                      datetime_format=p.datetime_format, decimals=p.decimals)
                out = RowWriter(fh, "jsonl" if fmt == "parquet" else fmt,
                                None if fmt == "parquet" else compression, formatter.names,
                                delimiter=p.delimiter, header=p.header, null=p.null)
                started = shown = time.monotonic()
                for batch in stream.batches:
                    ctx.check_cancelled()
                    out.write([formatter.row(r) for r in batch])
                    rows += len(batch)
                    if time.monotonic() - shown >= 1:  # the history is told once a second
                        shown = time.monotonic()
                        rate = rows / max(shown - started, 1e-6)
                        ctx.progress(None, "exporting", f"{rows:,} rows, {rate:,.0f} rows/s")
                size = out.close()
                if fh is not None:
                    fh.flush()
                    os.fsync(fh.fileno())
            if fmt == "parquet":
                # a dry run converts its staged rows in the scratch folder, to measure them
                target = tmp if tmp is not None else staging / "dry.parquet"
                assert text_target is not None
                parquet_from_jsonl(text_target, target, formatter.names)
                with open(target, "rb") as fh2:
                    os.fsync(fh2.fileno())
                size = target.stat().st_size
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)  # a failed export leaves no half file
            raise
        return rows, size, tmp

    def _retention(self, ctx: RunContext, p: ExportParams, path: Path) -> list[naming.OldFile]:
        if p.keep_last is None and p.keep_days is None:
            return []
        regex = naming.name_regex(p.path, ctx.task_name, ctx.target_name)
        old = naming.expired(path.parent, regex, path, keep_last=p.keep_last,
                             keep_seconds=p.keep_days.total_seconds() if p.keep_days else None,
                             now=time.time())
        if not ctx.dry_run:
            for f in old:
                f.path.unlink(missing_ok=True)
        return old
