"""verify_backup: prove a backup restorable (checksum, readable, or a real restore)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from wellkept.backups import catalog
from wellkept.backups.storage import open_storage
from wellkept.connector import Dumpable
from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks.backup import verify_and_record
from wellkept.types import RunStatus


class VerifyBackupParams(TaskParams):
    backup_id: str | None = Field(None, description=(
        "the backup to verify (default: the target's newest backup)"))
    tier: Literal["checksum", "readable", "restore"] = Field("restore", description=(
        "checksum (sha256 and size), readable (decrypt, decompress, list) or restore (into "
        "a scratch database, then compare row counts and run the smoke queries)"))
    smoke_queries: list[str] = Field([], description="queries that must succeed on the restore")
    scratch_server: str | None = Field(None, description=(
        "a URL of the same engine where the restore test makes its scratch database "
        "(default: the target's own server; set it for a replica, which cannot create one)"))
    age_identity_file: str | None = Field(None, description=(
        "file holding the age identity for encrypted backups (else WELLKEPT_AGE_IDENTITY)"))
    jobs: int = Field(1, ge=1, le=64, description="parallel restore jobs (PostgreSQL directory)")


class VerifyBackup(Task):
    """Verify a backup from the catalog and record the result on it.

    Three tiers, each including the ones before: `checksum` hashes the stored artifact and
    compares sha256 and size with its manifest; `readable` also decrypts and decompresses
    all of it (its size must match the manifest, which catches truncation) and has the
    engine's own tool list it (`pg_restore --list`, a complete `mariadb-dump` ending, SQLite's
    quick_check, an RDB header); `restore` (the default) restores it into a scratch database
    on the same server (or a temporary file), compares the row counts per table with the
    manifest, runs the `smoke_queries`, records the restore time, and drops the scratch
    database. On PostgreSQL the scratch tables load UNLOGGED (no WAL, about a fifth faster);
    `dr_drill` restores logged, as a recovery would, to measure the RTO. The result is
    stored on the backup in the catalog, where `backup_freshness` and retention read it.
    """

    kind = "verify_backup"
    Params = VerifyBackupParams
    requires = (Dumpable,)
    default_timeout = timedelta(hours=6)

    def run(self, ctx: RunContext) -> TaskResult:
        p: Any = self.params
        if p.backup_id:
            entry = catalog.get(ctx.store, p.backup_id)
            if entry is None:
                raise TaskFailed(f"no backup {p.backup_id!r} in the catalog (see `wellkept "
                                 "backups list`, or `--rebuild` it from storage)")
        else:
            found = catalog.entries(ctx.store, ctx.target_name)
            if not found:
                raise TaskFailed(f"no backups of {ctx.target_name} in the catalog")
            entry = found[0]
        storage = open_storage(entry.storage, ctx.base_dir)
        details: dict[str, Any] = {"backup_id": entry.id, "tier": p.tier,
                                   "artifact": entry.manifest.artifact}
        if ctx.dry_run:
            return TaskResult(message=f"would verify {entry.id} ({p.tier})", details=details)
        ctx.progress(None, f"verifying {entry.id} ({p.tier})")
        checked = verify_and_record(ctx, entry, storage, p.tier, p)
        details.update(checked.details)
        metrics: dict[str, float | int] = {}
        if checked.restore_seconds is not None:
            metrics["restore_seconds"] = round(checked.restore_seconds, 3)
        if not checked.passed:
            return TaskResult(status=RunStatus.FAILED, message=f"{entry.id}: {checked.message}",
                              metrics=metrics, details=details, errors=[checked.message])
        return TaskResult(message=f"{entry.id}: {checked.message}", metrics=metrics,
                          details=details)
