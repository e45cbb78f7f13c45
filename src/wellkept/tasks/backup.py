"""backup: a consistent copy of the database, written atomically, with a sha256."""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from wellkept.connector import Dumpable
from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.records import TaskResult, utcnow
from wellkept.task import Task, TaskParams
from wellkept.units import human_bytes

CHUNK = 1024 * 1024


class BackupParams(TaskParams):
    destination: str = Field("backups/", description=(
        "folder for the backup files (relative to the config file's folder)"))


class Backup(Task):
    """Write a consistent copy of the database to a folder, atomically, with a sha256.

    SQLite: the online backup API copies the live database page by page (writers may go on;
    the copy is a consistent snapshot). The copy is written under a temporary name, flushed to
    disk, checksummed and only then renamed to `<target>-<UTC timestamp>.sqlite3`, with the
    checksum beside it in `<file>.sha256` (sha256sum format). Files are created mode 0600.
    A failed or interrupted backup leaves no file that looks complete.

    A dry run reports the destination and the expected size, and writes nothing.
    """

    kind = "backup"
    Params = BackupParams
    requires = (Dumpable,)
    mutating = True
    default_timeout = timedelta(hours=6)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Dumpable)
        p: Any = self.params
        folder = ctx.resolve_path(p.destination)
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        suffix = ctx.connector.backup_suffix()
        final = folder / f"{ctx.target_name}-{stamp}{suffix}"
        n = 1
        while final.exists():  # a second backup within the same second
            final = folder / f"{ctx.target_name}-{stamp}-{n}{suffix}"
            n += 1
        expected = ctx.connector.backup_estimate()
        details: dict[str, Any] = {"path": str(final), "expected_bytes": expected}
        if ctx.dry_run:
            return TaskResult(message=f"would back up about {human_bytes(expected)} to {final}",
                              metrics={"bytes_written": 0, "files_processed": 0},
                              details=details)
        partial = folder / f".{final.name}.partial"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial.touch(mode=0o600)
            measured = ctx.connector.backup_to(partial, lambda done, total: ctx.progress(
                100.0 * done / total if total else None, "copying", f"{done}/{total} pages"))
            ctx.check_cancelled()
            digest = _sha256_and_sync(partial)
            os.replace(partial, final)
            _write_atomic(final.with_name(final.name + ".sha256"), f"{digest}  {final.name}\n")
            _sync_dir(folder)
        except OSError as exc:
            _discard(partial)
            raise TaskFailed(f"cannot write the backup to {folder}: "
                             f"{exc.strerror or exc}") from None
        except BaseException:
            _discard(partial)
            raise
        size = final.stat().st_size
        details.update({"sha256": digest, "bytes": size, **measured})
        return TaskResult(message=f"backed up {human_bytes(size)} to {final}",
                          metrics={"bytes_written": size, "files_processed": 1},
                          details=details)


def _discard(partial: Path) -> None:
    """Remove a half-written file; where even that fails, there is nothing more to do."""
    with contextlib.suppress(OSError):
        partial.unlink(missing_ok=True)


def _sha256_and_sync(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb+") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
        os.fsync(fh.fileno())
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
