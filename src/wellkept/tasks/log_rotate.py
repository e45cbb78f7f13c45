"""log_rotate: logrotate's rotation, with its state kept in the history store."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import stat
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from wellkept.connector import FileTree
from wellkept.context import RunContext
from wellkept.durations import Duration
from wellkept.errors import TaskFailed
from wellkept.fs.busy import BusyFiles
from wellkept.fs.compress import EXTENSIONS
from wellkept.fs.sizes import ByteSize, check_mode
from wellkept.fs.walk import open_folder
from wellkept.records import Metrics, TaskResult, utcnow
from wellkept.rotation import due, state
from wellkept.rotation.execute import Create, Outcome, execute
from wellkept.rotation.plan import Options, build, list_folder, rotated_pattern
from wellkept.task import Task, TaskParams
from wellkept.tasks import _files
from wellkept.units import human_bytes, plural

log = logging.getLogger("wellkept.task.log_rotate")
COPYTRUNCATE_WARNING = ("copytruncate: lines the program writes between the end of the copy "
                        "and the truncate are lost; prefer create with a program that reopens "
                        "its log")
SHOWN = 100

#: ready-made rotations: an application's logs, rotated at 100MB, 5 kept, gzip
PRESETS: dict[str, dict[str, Any]] = {
    "app_logs": {"size": "100M", "rotate": 5, "compress": "gzip", "missingok": True},
}


class LogRotateParams(TaskParams):
    preset: Literal["app_logs"] | None = Field(None, description=(
        "app_logs: size 100M, rotate 5, compress gzip, missingok; keys given override it"))
    paths: list[str] = Field(min_length=1, description=(
        "log files; the file name may be a glob (logs/*.log); relative to the config "
        "file's folder (or to a files:/// target's folder)"))
    size: ByteSize | None = Field(None, description=(
        "rotate when the file is at least this big (100M, 512k); any interval is then "
        "ignored, as in logrotate"))
    interval: Literal["hourly", "daily", "weekly", "monthly", "yearly"] | None = Field(
        None, description="rotate once per period, counted from the last rotation")
    weekday: int = Field(0, ge=0, le=7, description=(
        "weekly: the day it rotates on (0 Sunday … 6 Saturday; 7: only every 7 days)"))
    minsize: ByteSize | None = Field(None, description=(
        "with an interval: rotate only when the file is also at least this big"))
    maxsize: ByteSize | None = Field(None, description=(
        "with an interval: rotate also before the period ends when bigger than this"))
    rotate: int = Field(4, ge=-1, description=(
        "rotations kept (0: the rotated log is deleted; -1: all are kept)"))
    maxage: Duration | None = Field(None, description=(
        "delete rotations older than this; checked only when the log is rotated"))
    compress: Literal["gzip", "zstd"] | None = Field(None, description=(
        "compress rotations with gzip (.gz) or zstd (.zst)"))
    compresslevel: int | None = Field(None, ge=1, le=19, description=(
        "compression level (gzip 1-9, default 6; zstd 1-19, default 3)"))
    delaycompress: bool = Field(False, description=(
        "leave the newest rotation (.1) uncompressed until the next rotation"))
    copytruncate: bool = Field(False, description=(
        "copy the log and truncate it in place instead of renaming it (for programs that "
        "cannot reopen it; lines written in between are lost)"))
    create: bool | None = Field(None, description=(
        "after renaming, create a new empty log (default true; false is logrotate's "
        "nocreate)"))
    create_mode: str | None = Field(None, description=(
        "octal mode of the new log, e.g. '0640' (default: the old file's)"))
    create_owner: str | None = Field(None, description="owner of the new log (default: the old's)")
    create_group: str | None = Field(None, description="group of the new log (default: the old's)")
    dateext: bool = Field(False, description=(
        "name rotations by date (app.log-20261201) rather than by number"))
    dateformat: str = Field("-%Y%m%d", description="the dateext suffix, in strftime codes")
    missingok: bool = Field(False, description="a missing log is not an error")
    notifempty: bool = Field(False, description="never rotate an empty log")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_files.check_file_glob(v) for v in value]

    @field_validator("create_mode")
    @classmethod
    def _mode(cls, value: str | None) -> str | None:
        return None if value is None else check_mode(value)

    @model_validator(mode="after")
    def _consistent(self) -> LogRotateParams:
        if self.size is None and self.interval is None:
            raise ValueError("give size or interval (logrotate's daily, weekly …)")
        if self.size is not None and (self.minsize is not None or self.maxsize is not None):
            raise ValueError("size excludes minsize and maxsize (they qualify an interval)")
        if self.copytruncate and self.create:
            raise ValueError("copytruncate and create exclude each other; choose one")
        if self.weekday and self.interval != "weekly":
            raise ValueError("weekday goes with interval: weekly")
        if self.delaycompress and not self.compress:
            raise ValueError("delaycompress needs compress")
        if "/" in self.dateformat:
            raise ValueError("dateformat may not hold '/'")
        return self


class LogRotate(Task):
    """Rotate log files as logrotate does: by size or interval, keep N, compress, prune.

    A log is due when it is at least `size` (any interval is then ignored), or when its
    `interval` (hourly, daily, weekly, monthly, yearly) has passed since its last rotation,
    recorded in the history store like logrotate's state file; `minsize` adds "and at least
    this big", `maxsize` "or bigger than this". A log seen for the first time is recorded, not
    rotated (as logrotate does). `notifempty` never rotates an empty log.

    Rotating follows logrotate's order: with `delaycompress`, compress the previous rotation;
    delete rotations older than `maxage` (only checked when rotating); shift `app.log.1 …
    app.log.N` up, deleting the one past `rotate` (with `dateext`, delete the oldest dated
    ones past `rotate`); move the log to `app.log.1` (or `app.log-YYYYMMDD`): renamed and a
    new empty log created with the old one's owner and mode (`create`, the default), or copied
    and truncated in place (`copytruncate`, which loses what is written between the copy and
    the truncate: the run warns and reports that window); then compress it (gzip or zstd),
    unless `delaycompress`. What a killed run left half done is finished first: a rotation
    left uncompressed is compressed, and one left beside its compressed copy is removed once
    the copy is checked to hold the same bytes. A missing log is an error unless `missingok`.
    Symlinks, files that are not regular files and rotated names (`app.log.1`, `.gz`, `.zst`)
    are never rotated.

    Paths are relative to the config file's folder when the task runs on the implicit `host`
    target (the default), or to a `files:///` target's folder, which they may not leave.

    A dry run lists, per log, whether it is due and why, and every rename, deletion and
    compression with its bytes; it changes nothing, not even the state.
    """

    kind = "log_rotate"
    Params = LogRotateParams
    requires = (FileTree,)
    mutating = True
    default_timeout = timedelta(minutes=30)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, LogRotateParams)
        zone = ZoneInfo(ctx.settings.timezone if ctx.settings else "UTC")
        now = utcnow().astimezone(zone)
        opts = Options(rotate=p.rotate, compress=p.compress, delaycompress=p.delaycompress,
                       copytruncate=p.copytruncate, create=p.create is not False,
                       dateext=p.dateext, dateformat=p.dateformat,
                       maxage_seconds=p.maxage.total_seconds() if p.maxage else None)
        create = None if p.copytruncate or p.create is False else _create(p)
        logs, errors, rows = self._find(ctx, p, opts)
        known = state.last_rotated(ctx.store, [str(real) for _f, _n, real in logs])
        busy = BusyFiles({folder for folder, _n, _r in logs}) if logs else None
        # files_due: logs due (a dry run reports it); the rest: what was done (zero in a
        # dry run, whose would-be deletes and compressions are in the message and details)
        counts = {"files_checked": 0, "files_due": 0, "files_processed": 0, "files_deleted": 0,
                  "files_compressed": 0, "bytes_freed": 0, "bytes_written": 0}
        would = {"files_deleted": 0, "files_compressed": 0}
        warnings: list[str] = []
        for folder, name, real in logs:
            counts["files_checked"] += 1
            row: dict[str, Any] = {"path": str(folder / name)}
            rows.append(row)
            try:
                self._one(ctx, p, opts, create, folder, name, str(real), known, now, row,
                          counts, would, warnings, busy)
            except (OSError, TaskFailed) as exc:
                text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                row.update(action="failed", error=text)
                errors.append(f"{folder / name}: {text}")
        if p.copytruncate and counts["files_due"]:
            warnings.insert(0, COPYTRUNCATE_WARNING)
            log.warning("%s: %s", ctx.task_name, COPYTRUNCATE_WARNING)
        metrics: Metrics = dict(counts)
        details: dict[str, Any] = {"logs": rows[:SHOWN], "logs_total": len(rows)}
        if ctx.dry_run:
            details["would"] = would
        if warnings:
            details["warnings"] = warnings
        message = self._message(ctx, counts, would)
        return _files.result(message, metrics, details, errors, cap=SHOWN,
                             some_done=bool(counts["files_processed"])
                             or len(errors) < counts["files_checked"])

    def _find(self, ctx: RunContext, p: LogRotateParams, opts: Options
              ) -> tuple[list[tuple[Any, str, Any]], list[str], list[dict[str, Any]]]:
        """Every log named by ``paths``: (folder, name, real path); errors for missing ones."""
        found: list[tuple[Any, str, Any]] = []
        errors: list[str] = []
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for value in p.paths:
            folder, pattern = _files.split_glob(_files.resolve(ctx, value))
            if pattern is None:
                folder, pattern = folder.parent, folder.name
                literal = True
            else:
                literal = False
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            matched = _files.expand(names, pattern) if not literal else (
                [pattern] if pattern in names else [])
            if not matched and not p.missingok:
                errors.append(f"{folder / pattern}: no such file" if literal else
                              f"{folder / pattern}: no file matches")
            for name in matched:
                if not literal and _rotated_name(name, opts, names):
                    continue
                path = folder / name
                try:
                    st = os.lstat(path)
                except FileNotFoundError:  # removed since the listing
                    continue
                if stat.S_ISLNK(st.st_mode):
                    rows.append({"path": str(path), "action": "skipped",
                                 "reason": "symlink (rotating symlinks is refused)"})
                    continue
                if not stat.S_ISREG(st.st_mode):
                    rows.append({"path": str(path), "action": "skipped",
                                 "reason": "not a regular file"})
                    continue
                real = os.path.realpath(path)
                if real not in seen:
                    seen.add(real)
                    found.append((folder, name, real))
        return found, errors, rows

    def _one(self, ctx: RunContext, p: LogRotateParams, opts: Options, create: Create | None,
             folder: Any, name: str, real: str, known: dict[str, datetime], now: datetime,
             row: dict[str, Any], counts: dict[str, int], would: dict[str, int],
             warnings: list[str], busy: BusyFiles | None) -> None:
        fd = open_folder(folder)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                row.update(action="skipped", reason="no longer a regular file")
                return
            last = known.get(real)
            rotate, why = due.decide(size=st.st_size, size_rule=p.size, interval=p.interval,
                                     minsize=p.minsize, maxsize=p.maxsize,
                                     notifempty=p.notifempty,
                                     last=last.astimezone(now.tzinfo) if last else None,
                                     now=now, weekday=p.weekday)
            row.update(bytes=st.st_size, due=rotate, reason=why)
            if not rotate:
                row["action"] = "not due"
                if last is None and not ctx.dry_run:
                    state.record(ctx.store, real, ctx.task_name, now)
                return
            holder = busy.why(st) if busy and not p.copytruncate else None
            if holder:
                # renaming a log under a writer is what logrotate does (the writer reopens on
                # its signal); say so, since wellkept sends no signal
                warnings.append(f"{folder / name}: {holder}; it keeps writing to "
                                f"{name}.1 until it reopens its log")
            sizes = list_folder(fd)
            plan = build(name, st.st_size, {n: sizes[n] for n in sizes
                                            if n != name}, opts, now)
            if plan.problem:
                raise TaskFailed(plan.problem)
            row["steps"] = [s.describe() for s in plan.steps]
            counts["files_due"] += 1
            if ctx.dry_run:
                row["action"] = "would rotate"
                would["files_deleted"] += sum(1 for s in plan.steps
                                              if s.op in ("delete", "discard"))
                would["files_compressed"] += sum(1 for s in plan.steps if s.op == "compress")
                return
            outcome = Outcome()
            try:
                execute(fd, plan, p.compress, p.compresslevel, p.copytruncate, create, outcome)
            finally:
                # moved aside, the log has rotated, even when a later step (its compression,
                # on a full disk) fails: recorded, or a log on an interval rotates twice
                if any(step.op == "rotate" for step in outcome.done):
                    state.record(ctx.store, real, ctx.task_name, now)
                    row["action"] = "rotated"
                    _count(outcome, counts)
                    if outcome.copytruncate_window_ms is not None:
                        row["copytruncate_window_ms"] = round(
                            outcome.copytruncate_window_ms, 3)
        finally:
            os.close(fd)

    def _message(self, ctx: RunContext, counts: dict[str, int], would: dict[str, int]) -> str:
        checked, done = counts["files_checked"], counts["files_processed"]
        if ctx.dry_run:
            return (f"would rotate {counts['files_due']} of {plural(checked, 'log')}, deleting "
                    f"{plural(would['files_deleted'], 'old rotation')} and compressing "
                    f"{would['files_compressed']}")
        if not done:
            return f"no log due: {plural(checked, 'log')} checked"
        return (f"rotated {done} of {plural(checked, 'log')}; deleted "
                f"{plural(counts['files_deleted'], 'old rotation')}, compressed "
                f"{counts['files_compressed']}, {human_bytes(counts['bytes_freed'])} freed")


def _count(outcome: Outcome, counts: dict[str, int]) -> None:
    counts["files_processed"] += 1
    counts["files_deleted"] += outcome.files_deleted
    counts["files_compressed"] += outcome.files_compressed
    counts["bytes_freed"] += outcome.bytes_deleted + max(
        outcome.bytes_compressed_in - outcome.bytes_compressed_out, 0)
    counts["bytes_written"] += outcome.bytes_compressed_out


def _rotated_name(name: str, opts: Options, names: list[str]) -> bool:
    """A rotation of another log in the same folder (``app.log.1``, ``app.log-20261201.gz``),
    or a compressed file: never a log to rotate itself (logrotate's tabooext)."""
    if name.endswith(tuple(EXTENSIONS.values())) or name.startswith("."):
        return True
    return any(rotated_pattern(other, opts).fullmatch(name) for other in names
               if other != name and name.startswith(other))


def _create(p: LogRotateParams) -> Create:
    try:
        uid = pwd.getpwnam(p.create_owner).pw_uid if p.create_owner else None
        gid = grp.getgrnam(p.create_group).gr_gid if p.create_group else None
    except KeyError as exc:
        raise TaskFailed(f"create: unknown user or group {exc}") from None
    return Create(mode=int(p.create_mode, 8) if p.create_mode else None, uid=uid, gid=gid)
