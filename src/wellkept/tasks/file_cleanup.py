"""file_cleanup: delete or compress files past their age, as systemd-tmpfiles and tmpreaper do."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from wellkept.connector import FileTree
from wellkept.context import RunContext
from wellkept.durations import Duration, format_duration
from wellkept.errors import TaskFailed
from wellkept.fs import is_temp_name
from wellkept.fs.busy import BusyFiles
from wellkept.fs.compress import compress_at
from wellkept.fs.globs import check_pattern
from wellkept.fs.walk import Entry, Skipped, walk
from wellkept.records import Metrics, TaskResult, stopped_early
from wellkept.task import Task, TaskParams
from wellkept.tasks import _files
from wellkept.units import human_bytes, plural

SAMPLE = 50
#: names already compressed: the compress action leaves them alone
COMPRESSED = (".gz", ".zst", ".bz2", ".xz", ".lz4", ".zip", ".7z", ".parquet", ".tgz")

#: ready-made retention rules (market data 90 days, logs 30 days, temp files 7 days)
PRESETS: dict[str, dict[str, Any]] = {
    "market_data": {"include": ["*.parquet", "*.csv", "*.csv.gz", "*.json", "*.jsonl",
                                "*.jsonl.gz"], "age": "90d"},
    "logs": {"include": ["*.log", "*.log.*", "*.log-*"], "age": "30d"},
    "temp": {"include": ["*"], "age": "7d", "remove_empty_dirs": True},
}


class Rule(TaskParams):
    preset: Literal["market_data", "logs", "temp"] | None = Field(None, description=(
        "ready-made rules: market_data (Parquet, CSV, JSON files, 90d), logs (*.log*, "
        "30d), temp (everything, 7d, empty folders removed); keys given override it"))
    path: str = Field(description="the folder (relative to the config file's folder)")
    include: list[str] = Field(["*"], description=(
        "globs of the files to act on; without a slash a glob matches the name anywhere, "
        "with one the path below `path`; ** spans folders"))
    exclude: list[str] = Field([], description="globs left alone (a matching folder whole)")
    age: Duration = Field(description="act on files older than this, e.g. 30d")
    age_by: Literal["mtime", "atime", "ctime", "all"] = Field("mtime", description=(
        "which time the age is taken from; all: every one of atime, mtime and ctime must "
        "be older (systemd-tmpfiles)"))
    action: Literal["delete", "compress"] = Field("delete", description=(
        "delete the files, or compress them in place (name.gz / name.zst)"))
    compression: Literal["gzip", "zstd"] = Field("gzip", description="compress: the method")
    recursive: bool = Field(True, description="also act below sub-folders")
    remove_empty_dirs: bool = Field(False, description=(
        "delete: also remove sub-folders left empty that are older than `age`"))

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [check_pattern(g) for g in value]

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.action == "compress" and self.remove_empty_dirs:
            raise ValueError("remove_empty_dirs goes with action: delete")
        if not self.path.strip():
            raise ValueError("path: an empty path")
        return self


class FileCleanupParams(TaskParams):
    rules: list[Rule] = Field(min_length=1, description=(
        "folders to clean: [{path, include, exclude, age, age_by, action}, …]"))


class FileCleanup(Task):
    """Delete (or compress in place) files older than an age, rule by rule, safely.

    Each rule names a folder, `include`/`exclude` globs and an `age`, taken from the files'
    mtime by default, or their atime or ctime, or all three at once (`age_by: all`: a file
    is old only when nothing has read, written or changed it for that long, as
    systemd-tmpfiles decides). `action: delete` deletes them (and, with
    `remove_empty_dirs`, the sub-folders left empty); `action: compress` compresses each one
    in place (gzip or zstd, durably: the compressed copy is fsynced before the original goes),
    skipping names already compressed.

    It never follows a symlink (a link is neither followed nor deleted; a folder swapped for
    one mid-run is refused because folders are opened with O_NOFOLLOW), never crosses into
    another filesystem mounted below a rule's folder, and skips files that another process
    has open for writing or holds a lock on (flock, POSIX or OFD), and folders that are
    locked. A file that changed between the scan and the action is left alone. Names with
    spaces or newlines are handled like any other.

    Presets give common retention: `market_data` (90d), `logs` (30d), `temp` (7d).

    Paths are relative to the config file's folder on the implicit `host` target (the
    default), or to a `files:///` target's folder, which they may not leave. A rule whose
    folder is `/`, a system folder such as `/usr`, `/var` or `/var/log`, or the home folder
    fails the run before anything is touched: name a folder below it.

    Reports files matched, processed and skipped (with the reasons), and bytes freed: a file
    with other hard links frees nothing when one name goes, and is not compressed. A dry
    run lists what it would delete or compress, with the bytes, and changes nothing. A run
    stopped by its time limit, Ctrl-C or SIGTERM reports what it had deleted (a
    `partial_failure`); the next run goes on with the rest.
    """

    kind = "file_cleanup"
    Params = FileCleanupParams
    requires = (FileTree,)
    mutating = True
    default_timeout = timedelta(hours=1)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, FileCleanupParams)
        roots = [_files.resolve(ctx, r.path) for r in p.rules]
        for root in roots:  # all checked before any rule runs
            _files.refuse_system_folder(root)
        busy = BusyFiles(roots)
        # *_matched: what was found (a dry run reports it); the rest: what was done (zero
        # in a dry run)
        counts = {"files_matched": 0, "files_processed": 0, "files_deleted": 0,
                  "files_compressed": 0, "files_skipped": 0, "dirs_matched": 0,
                  "dirs_removed": 0, "bytes_matched": 0, "bytes_freed": 0, "bytes_written": 0}
        skipped = Skipped()
        sample: list[dict[str, Any]] = []
        errors: list[str] = []
        per_rule = []
        stopped = False
        for rule, root in zip(p.rules, roots, strict=True):
            before = dict(counts)
            if not os.path.lexists(root):
                per_rule.append({"path": str(root), "missing": True})
                continue
            stopped = self._rule(ctx, rule, root, busy, counts, skipped, sample, errors)
            per_rule.append({"path": str(root), "age": format_duration(rule.age),
                             "action": rule.action,
                             **{k: counts[k] - before[k] for k in counts}})
            if stopped:
                break
        metrics: Metrics = dict(counts)
        details: dict[str, Any] = {"rules": per_rule, "files": sample,
                                   "skipped": skipped.entries, "skipped_reasons": skipped.counts}
        message = self._message(ctx, counts, skipped)
        if stopped:
            return stopped_early(f"{message}; stopped before the end, the rest is left for the "
                                 "next run", metrics, details)
        return _files.result(message, metrics, details, errors,
                             some_done=bool(counts["files_processed"]), cap=SAMPLE)

    def _rule(self, ctx: RunContext, rule: Rule, root: Path, busy: BusyFiles,
              counts: dict[str, int], skipped: Skipped, sample: list[dict[str, Any]],
              errors: list[str]) -> bool:
        """Apply one rule; True when the run was cancelled (a time limit, Ctrl-C, SIGTERM)
        after some work was done: what was deleted is reported, the rest left."""
        cutoff = time.time() - rule.age.total_seconds()
        last_progress = time.monotonic()
        for entry in walk(root, tuple(rule.include), tuple(rule.exclude),
                          recursive=rule.recursive, skipped=skipped,
                          folders=rule.remove_empty_dirs, check=busy.why):
            if ctx.cancelled:
                if not counts["files_processed"] and not counts["dirs_removed"]:
                    ctx.check_cancelled()  # nothing done yet: the run failed
                return True
            if stat.S_ISDIR(entry.st.st_mode):
                if entry.st.st_mtime < cutoff:
                    self._remove_dir(ctx, entry, counts)
                continue
            if _newest(entry.st, rule.age_by) >= cutoff:
                continue
            if rule.action == "compress" and (entry.name.lower().endswith(COMPRESSED)
                                              or is_temp_name(entry.name)):
                continue  # a half-written temporary file is no one's data to compress
            counts["files_matched"] += 1
            counts["bytes_matched"] += entry.st.st_size
            reason = busy.why(entry.st)
            if reason:
                counts["files_skipped"] += 1
                skipped.add(entry.path, reason)
                continue
            if len(sample) < SAMPLE:
                sample.append({"path": str(entry.path), "bytes": entry.st.st_size,
                               "age_days": round((time.time() - _newest(
                                   entry.st, rule.age_by)) / 86400, 1)})
            if ctx.dry_run:
                continue
            try:
                self._act(rule, entry, counts, skipped)
            except (OSError, TaskFailed) as exc:
                text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                errors.append(f"{entry.path}: {text}")
            if time.monotonic() - last_progress > 1:
                last_progress = time.monotonic()
                ctx.progress(None, "cleaning", f"{counts['files_processed']:,} files, "
                                               f"{human_bytes(counts['bytes_freed'])} freed")
        return False

    @staticmethod
    def _act(rule: Rule, entry: Entry, counts: dict[str, int], skipped: Skipped) -> None:
        if not entry.unchanged():
            counts["files_skipped"] += 1
            skipped.add(entry.path, "changed since the scan")
            return
        shared = entry.st.st_nlink > 1  # another name keeps the data: nothing is freed
        if rule.action == "delete":
            os.unlink(entry.name, dir_fd=entry.dir_fd)
            counts["files_deleted"] += 1
            counts["bytes_freed"] += 0 if shared else entry.st.st_size
        elif shared:  # the compressed copy would only add to what the other name keeps
            counts["files_skipped"] += 1
            skipped.add(entry.path, f"has {entry.st.st_nlink - 1} other hard link(s); "
                                    "compressing it would free nothing")
            return
        else:
            try:
                done = compress_at(entry.dir_fd, entry.name, rule.compression,
                                   expect=entry.st)
            except TaskFailed as exc:
                counts["files_skipped"] += 1
                skipped.add(entry.path, str(exc))
                return
            counts["files_compressed"] += 1
            counts["bytes_written"] += done.bytes_out
            counts["bytes_freed"] += max(done.bytes_in - done.bytes_out, 0)
        counts["files_processed"] += 1

    @staticmethod
    def _remove_dir(ctx: RunContext, entry: Entry, counts: dict[str, int]) -> None:
        try:
            if _holds_anything(entry):
                return
        except OSError:
            return
        counts["dirs_matched"] += 1
        if ctx.dry_run:
            return
        try:
            os.rmdir(entry.name, dir_fd=entry.dir_fd)
        except OSError:  # something appeared in it meanwhile
            return
        counts["dirs_removed"] += 1

    def _message(self, ctx: RunContext, counts: dict[str, int], skipped: Skipped) -> str:
        skipped_n = counts["files_skipped"]
        tail = f"; {skipped_n} skipped (in use, changed or hard-linked)" if skipped_n else ""
        if ctx.dry_run:
            dirs = counts["dirs_matched"]
            return (f"would act on {plural(counts['files_matched'] - skipped_n, 'file')} "
                    f"({human_bytes(counts['bytes_matched'])}) past their age"
                    + (f" and remove {plural(dirs, 'empty folder')}" if dirs else "") + tail)
        if not counts["files_matched"]:
            return "nothing to clean: no file past its age" + tail
        parts = []
        if counts["files_deleted"]:
            parts.append(f"deleted {plural(counts['files_deleted'], 'file')}")
        if counts["files_compressed"]:
            parts.append(f"compressed {plural(counts['files_compressed'], 'file')}")
        if counts["dirs_removed"]:
            parts.append(f"removed {plural(counts['dirs_removed'], 'empty folder')}")
        return (", ".join(parts) or "nothing done") + \
            f", {human_bytes(counts['bytes_freed'])} freed{tail}"


def _holds_anything(entry: Entry) -> bool:
    """Whether the folder still holds anything (then it stays)."""
    fd = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=entry.dir_fd)
    try:
        return bool(os.listdir(fd))
    finally:
        os.close(fd)


def _newest(st: os.stat_result, age_by: str) -> float:
    """The time the age is counted from: one timestamp, or the newest of all three."""
    if age_by == "all":
        return max(st.st_atime, st.st_mtime, st.st_ctime)
    return float(getattr(st, f"st_{age_by}"))
