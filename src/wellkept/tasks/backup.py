"""backup: a verified, checksummed, optionally encrypted dump in a folder or S3."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from wellkept.backups import catalog, compression, encryption, retention
from wellkept.backups.artifact import ArtifactWriter
from wellkept.backups.manifest import MANIFEST_SUFFIX, Manifest, new_backup_id, stamp
from wellkept.backups.storage import Storage, open_storage
from wellkept.backups.verify import Verification, verify
from wellkept.config import TargetSettings
from wellkept.connector import Connector, Dumpable, DumpOptions
from wellkept.context import RunContext
from wellkept.durations import Duration
from wellkept.errors import TaskFailed, TaskTimeout
from wellkept.records import TaskResult, stopped_early, utcnow
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import human_bytes, plural

#: a hidden partial file untouched this long was left by a killed backup and is deleted
PARTIAL_IDLE_SECONDS = 15 * 60


class BackupParams(TaskParams):
    destination: str = Field("backups/", description=(
        "a folder (relative to the config file's folder) or s3://bucket/prefix"))
    compression: Literal["zstd", "gzip", "none"] = Field("zstd", description=(
        "zstd (multi-threaded), gzip or none"))
    level: int | None = Field(None, ge=0, le=22, description=(
        "compression level (zstd default 3, gzip 6)"))
    encrypt_to: str = Field("", description=(
        "an age recipient (age1…) to encrypt to; empty: not encrypted"))
    age_identity_file: str | None = Field(None, description=(
        "file holding the age identity that decrypts, for verification (else the "
        "WELLKEPT_AGE_IDENTITY environment variable)"))
    format: Literal["", "custom", "directory"] = Field("", description=(
        "PostgreSQL: custom (one stream) or directory (parallel, with jobs); default: "
        "custom, or directory when jobs > 1"))
    jobs: int = Field(1, ge=1, le=64, description="parallel dump and restore jobs (PostgreSQL)")
    verify: Literal["none", "checksum", "readable", "restore"] = Field("checksum", description=(
        "verify each new backup: checksum, readable (decompress and list) or restore (into "
        "a scratch database, comparing row counts)"))
    smoke_queries: list[str] = Field([], description=(
        "queries run on the scratch restore (verify: restore); each must succeed"))
    scratch_server: str | None = Field(None, description=(
        "a URL of the same engine where restore tests make their scratch database (default: "
        "the target's own server; set it for a replica, which cannot create one)"))
    keep_last: int | None = Field(None, ge=1, description="keep the N newest verified backups")
    keep_days: Duration | None = Field(None, description=(
        "keep every backup of this period, plus the newest one older than it"))
    minimum_redundancy: int = Field(1, ge=1, description=(
        "never keep fewer verified backups than this"))


#: progress marks: the dump fills 0-85%, the stored backup is checkpointed at 90%, its
#: passed verification at 97% (above recovery's validate-only threshold of 95%)
DUMP_PERCENT, STORED_PERCENT, VERIFIED_PERCENT = 85.0, 90.0, 97.0
RESUME_WITHIN = timedelta(days=1)


def connect_url(url: str, like: TargetSettings, name: str) -> Connector:
    """A connector for ``url`` (a scratch or restore destination), with ``like``'s timeouts."""
    from wellkept.registry import Registry

    settings = like.model_copy(update={"url": url})
    return Registry.default().connector_class(settings.scheme)(name, settings)


def identities_for(p: Any, ctx: RunContext, made_by: str | None = None) -> Any:
    """The age identities that decrypt: ``p``'s ``age_identity_file``, else that of the task
    ``made_by`` (the one that made the backup, as `wellkept backups verify` and `wellkept
    restore` take it), else WELLKEPT_AGE_IDENTITY."""
    def load() -> list[Any]:
        name = p.age_identity_file
        task = ctx.settings.tasks.get(made_by) if ctx.settings and made_by else None
        if not name and task is not None:
            name = getattr(task.params, "age_identity_file", None)
        return encryption.load_identities(ctx.resolve_path(name) if name else None)
    return load


def verify_and_record(ctx: RunContext, entry: catalog.Entry, storage: Storage, tier: str,
                      p: Any, *, as_recovery: bool = False) -> Verification:
    """Verify a catalogued backup to ``tier`` (with ``p``'s jobs, smoke queries and age
    identity) in a private work folder, and record the result on it in the catalog.

    A restore test loads the scratch database unlogged where the engine can (it is dropped
    afterwards, and that is faster); ``as_recovery`` restores it as a real recovery would,
    so that its time is a true RTO."""
    def connect(url: str) -> Connector:
        return connect_url(url, ctx.connector.settings, f"{ctx.target_name}-scratch")

    scratch = connect(p.scratch_server) if p.scratch_server else ctx.connector
    if scratch.name != ctx.connector.name:
        raise TaskFailed(f"scratch_server is a {scratch.name} URL; restore tests of "
                         f"{ctx.target_name} need a {ctx.connector.name} server")
    workdir = Path(tempfile.mkdtemp(prefix="wellkept-verify-"))
    try:
        checked = verify(entry, storage, tier, source=ctx.connector, scratch=scratch,
                         options=DumpOptions(workdir=workdir, jobs=p.jobs,
                                             unlogged=not as_recovery),
                         identities=identities_for(p, ctx, entry.manifest.task),
                         connect=connect,
                         smoke_queries=p.smoke_queries)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if scratch is not ctx.connector:
            scratch.close()
    if not checked.passed and ctx.cancelled:
        # stopped (a time limit, Ctrl-C, SIGTERM), not failed: the check was cut short, which
        # says nothing against the backup, so its record stays as it was
        ctx.check_cancelled()
    catalog.mark_verified(ctx.store, entry.id, checked.tier, checked.passed, checked.message,
                          checked.restore_seconds)
    return checked


def policy_of(p: Any) -> retention.Policy:
    return retention.Policy(keep_last=p.keep_last, keep_days=p.keep_days,
                            minimum_redundancy=p.minimum_redundancy)


class Backup(Task):
    """Dump the target, compress, checksum, store, verify, then apply retention.

    The engine's own consistent dump (PostgreSQL: pg_dump in an exported snapshot, custom
    format or directory format with `jobs`; MySQL/MariaDB: mariadb-dump
    --single-transaction; SQLite: the online backup API; DuckDB: EXPORT DATABASE; Redis: an
    RDB snapshot; a `files` folder: a tar of the tree) is streamed through zstd
    (multi-threaded; or gzip, or none) and, with `encrypt_to`, age encryption, into
    `destination` (a folder, or s3://bucket/prefix).
    The stored bytes are hashed as they are written. A JSON manifest (engine, server and tool
    versions, database, times, sizes, sha256, row counts per table) is written last: a backup
    is complete only when its manifest exists, so a killed or failed backup never lists as
    complete. Files are mode 0600; passwords reach the dump tools through the environment or
    an option file, never the command line.

    Then the new backup is verified (`verify`: checksum, readable or restore) and the result
    is recorded in the catalog (`wellkept backups list`). Retention (`keep_last`,
    `keep_days`, `minimum_redundancy`) prunes only when the newest backup is verified, counts
    only verified backups, and only ever touches backups listed in the catalog by manifest id.

    The run checkpoints twice: when the backup is stored (its manifest written) and when it
    passed verification. An interrupted run is recovered from there (wellkept serve,
    wellkept recover, or the next run): a stored backup is verified and retention applied
    without dumping again; a verified one only needs retention (the validate-only strategy
    checks the catalog and the manifest). A dump cut off midway is never resumed: it is
    started again, and the partial artifact, having no manifest, never lists as complete.
    Nor is a stored backup more than a day old: a new one is taken instead.

    A dry run reports the destination, the expected size and what retention would prune, and
    writes nothing.
    """

    kind = "backup"
    Params = BackupParams
    requires = (Dumpable,)
    mutating = True
    changes_target = False  # so it runs on a read-only replica too
    resumable = True
    priority = 5
    default_timeout = timedelta(hours=6)

    def resume_identity(self) -> dict[str, Any]:
        """Where the backup goes and how it is verified; compression or jobs may change."""
        dumped = self.params.model_dump(mode="json")
        return {k: dumped.get(k) for k in ("destination", "verify", "encrypt_to")}

    def checkpoint_valid(self, ctx: RunContext, checkpoint: dict[str, Any]) -> bool:
        """The backup it names is still catalogued, not pruned, its manifest is there, it
        is fresh (a backup stored more than RESUME_WITHIN ago is not worth finishing), and
        its verification did not already fail: that run was not interrupted, it finished
        with a finding, and the next run takes a new backup rather than re-verifying the old
        one and reporting it as its own."""
        entry = self._stored_entry(ctx, checkpoint)
        return (entry is not None and entry.verify_status != "failed"
                and utcnow() - entry.manifest.created <= RESUME_WITHIN)

    def validate(self, ctx: RunContext) -> bool | None:
        """Done when the interrupted run's backup passed verification (only retention was
        left, and the next run applies it)."""
        point = ctx.resumed_from
        if not point or point["name"] != "verified":
            return False
        entry = self._stored_entry(ctx, point)
        return entry is not None and entry.verified

    def _stored_entry(self, ctx: RunContext, point: dict[str, Any]) -> catalog.Entry | None:
        p: Any = self.params
        backup_id = point.get("data", {}).get("backup_id")
        entry = catalog.get(ctx.store, backup_id) if backup_id else None
        if entry is None or entry.pruned_at is not None:
            return None
        storage = open_storage(p.destination, ctx.base_dir)
        if entry.storage != storage.location:
            return None
        m = entry.manifest
        return entry if storage.exists(f"{m.target}/{m.name}") else None

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Dumpable)
        p: Any = self.params
        storage = open_storage(p.destination, ctx.base_dir)
        recipients = [encryption.recipient(p.encrypt_to)] if p.encrypt_to.strip() else None
        expected = ctx.connector.dump_estimate()
        details: dict[str, Any] = {"destination": storage.url, "expected_bytes": expected,
                                   "compression": p.compression,
                                   "encrypted": bool(recipients)}
        if ctx.dry_run:
            doomed = self._would_prune(ctx, storage)
            details["would_prune"] = doomed
            return TaskResult(
                message=f"would back up about {human_bytes(expected)} of {ctx.target_name} to "
                        f"{storage.url}" + (f" and prune {plural(len(doomed), 'backup')}"
                                            if doomed else ""),
                metrics={"bytes_written": 0, "files_processed": 0}, details=details)
        resumed = self._stored_entry(ctx, ctx.resumed_from) if ctx.resumed_from else None
        # under the target lock, so no other backup of this target is writing now
        swept = storage.sweep(ctx.target_name, PARTIAL_IDLE_SECONDS)
        if swept:
            details["swept_partials"] = swept
        workdir = Path(tempfile.mkdtemp(prefix="wellkept-backup-"))
        stopped = False
        try:
            if resumed is None:
                manifest = self._backup(ctx, storage, recipients, workdir, expected)
                catalog.record(ctx.store, manifest, storage.location)
                ctx.checkpoint("stored", STORED_PERCENT, {"backup_id": manifest.id})
            else:  # recovered: the interrupted run had stored this backup
                manifest = resumed.manifest
                details["resumed_backup"] = manifest.id
            details.update({"backup_id": manifest.id, "artifact": manifest.artifact,
                            "path": f"{storage.url.rstrip('/')}/{manifest.artifact}",
                            "sha256": manifest.sha256, "bytes": manifest.stored_bytes,
                            "raw_bytes": manifest.raw_bytes, "tables": len(manifest.counts),
                            "format": manifest.format})
            if resumed is not None and resumed.verified:
                checked: Verification | None = Verification(
                    resumed.verify_tier or p.verify, True, resumed.verify_message or "",
                    resumed.restore_seconds)
            else:
                try:
                    checked = self._verify(ctx, storage, manifest)
                except TaskTimeout:
                    if not ctx.cancelled:
                        raise
                    checked, stopped = None, True  # stored, and the next run verifies it
                if checked is not None and checked.passed:
                    ctx.checkpoint("verified", VERIFIED_PERCENT, {"backup_id": manifest.id})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        metrics: dict[str, float | int] = {"bytes_written": manifest.stored_bytes,
                                           "files_processed": 1}
        message = (f"backed up {human_bytes(manifest.raw_bytes)} of {ctx.target_name} as "
                   f"{human_bytes(manifest.stored_bytes)} ({manifest.id})")
        if resumed is not None:
            message = (f"recovered backup {manifest.id} ({human_bytes(manifest.stored_bytes)}) "
                       "stored by the interrupted run")
        if stopped:
            return stopped_early(f"{message}; stopped before its verification ended, the next "
                                 "run verifies it", metrics, details)
        if checked is not None:
            details["verification"] = {"tier": checked.tier, "passed": checked.passed,
                                       "message": checked.message, **checked.details}
            if checked.restore_seconds is not None:
                metrics["restore_seconds"] = round(checked.restore_seconds, 3)
            if not checked.passed:
                return TaskResult(status=RunStatus.FAILED, message=f"{message}, but "
                                  f"verification failed: {checked.message}", metrics=metrics,
                                  details=details, errors=[checked.message])
            message += f", verified ({checked.tier})"
        pruned = self._prune(ctx, storage)
        details["pruned"] = pruned
        metrics["backups_pruned"] = len(pruned)
        if pruned:
            message += f"; pruned {plural(len(pruned), 'old backup')}"
        return TaskResult(message=message, metrics=metrics, details=details)

    def _backup(self, ctx: RunContext, storage: Storage, recipients: list[Any] | None,
                workdir: Path, expected: int) -> Manifest:
        p: Any = self.params
        connector: Any = ctx.connector
        started = utcnow()
        backup_id = new_backup_id(ctx.target_name, started)
        artifact = (f"{ctx.target_name}/{backup_id}.{connector.name}"
                    f"{compression.SUFFIXES[p.compression]}"
                    f"{encryption.SUFFIX if recipients else ''}")
        options = DumpOptions(workdir=workdir, jobs=p.jobs, format=p.format)

        def progress(done: int) -> None:
            ctx.check_cancelled()
            # the dump is most of the work, but only a stored backup can be resumed from
            ctx.progress(min(DUMP_PERCENT, DUMP_PERCENT * done / expected) if expected else None,
                         "dumping", f"{human_bytes(done)} of about {human_bytes(expected)}")

        with storage.writer(artifact) as fh:
            writer = ArtifactWriter(fh, p.compression, recipients, p.level, progress)
            info = connector.dump(writer, options)
            sha256, stored = writer.finish()
            ctx.check_cancelled()
        from wellkept import __version__

        manifest = Manifest(
            id=backup_id, task=ctx.task_name, target=ctx.target_name, engine=connector.name,
            format=info.format, database=info.database, server_version=info.server_version,
            tools=info.tools, started_at=stamp(started), finished_at=stamp(utcnow()),
            artifact=artifact, raw_bytes=writer.raw_bytes, stored_bytes=stored, sha256=sha256,
            compression=p.compression, encrypted=bool(recipients),
            recipient=p.encrypt_to.strip(), counts=info.counts,
            counts_exact=info.counts_exact, wellkept_version=__version__,
            details={"suffix": info.suffix, "jobs": p.jobs, **info.details})
        # the manifest last: its presence is what makes the backup complete
        try:
            storage.write_text(f"{ctx.target_name}/{backup_id}{MANIFEST_SUFFIX}",
                               manifest.to_json())
        except BaseException:
            # no manifest will ever name the artifact, and the sweep only knows .partial
            # files: delete it now, or a full destination stays full of orphans
            with contextlib.suppress(Exception):
                storage.delete(artifact)
            raise
        return manifest

    def _verify(self, ctx: RunContext, storage: Storage,
                manifest: Manifest) -> Verification | None:
        p: Any = self.params
        if p.verify == "none":
            return None
        ctx.progress(None, f"verifying ({p.verify})")
        entry = catalog.get(ctx.store, manifest.id)
        assert entry is not None
        return verify_and_record(ctx, entry, storage, p.verify, p)

    def _would_prune(self, ctx: RunContext, storage: Storage) -> list[str]:
        """What the real run's retention would delete: the plan over the catalog plus the
        backup the run adds first (newest, and verified unless `verify: none`, which prunes
        nothing), limited to this destination as ``_prune`` is."""
        p: Any = self.params
        now = utcnow()
        stamp_now = stamp(now)
        coming = catalog.Entry(
            manifest=Manifest(
                id="", task=ctx.task_name, target=ctx.target_name, engine=ctx.connector.name,
                format="", database="", server_version="", tools={}, started_at=stamp_now,
                finished_at=stamp_now, artifact="", raw_bytes=0, stored_bytes=0, sha256="",
                compression=p.compression, encrypted=False, recipient="", counts={},
                counts_exact=False, wellkept_version=""),
            storage=storage.location,
            verify_status=None if p.verify == "none" else "passed", verify_tier=p.verify)
        found = catalog.entries(ctx.store, ctx.target_name, task=ctx.task_name)
        return [d.entry.id for d in retention.plan([coming, *found], policy_of(p), now)
                if not d.keep and d.entry is not coming
                and d.entry.storage == storage.location]

    def _prune(self, ctx: RunContext, storage: Storage) -> list[str]:
        """Delete what the policy lets go: the manifest first (the backup stops being
        complete), then the artifact. Only catalogued backups of this task are considered."""
        p: Any = self.params
        pruned = []
        for decision in retention.plan(catalog.entries(ctx.store, ctx.target_name,
                                                       task=ctx.task_name),
                                       policy_of(p), utcnow()):
            if decision.keep:
                continue
            m = decision.entry.manifest
            if decision.entry.storage != storage.location:
                continue  # written to another destination: that task's policy owns it
            storage.delete(f"{m.target}/{m.name}")
            storage.delete(m.artifact)
            catalog.mark_pruned(ctx.store, m.id)
            pruned.append(m.id)
        return pruned

