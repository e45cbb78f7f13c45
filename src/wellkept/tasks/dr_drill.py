"""dr_drill: rehearse a disaster recovery and report pass/fail per check (seed 001)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import Field

from wellkept.backups import catalog
from wellkept.backups.freshness import freshness
from wellkept.backups.storage import open_storage
from wellkept.connector import Dumpable, ReplicationReporter
from wellkept.context import RunContext
from wellkept.durations import Duration, format_duration
from wellkept.errors import WellkeptError
from wellkept.records import TaskResult, utcnow
from wellkept.redact import redact
from wellkept.task import Task, TaskParams
from wellkept.tasks.backup import verify_and_record
from wellkept.types import RunStatus, overall_status
from wellkept.units import human_age, plural

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class DrDrillParams(TaskParams):
    rpo: Duration = Field(timedelta(days=1), description=(
        "backup availability: the newest verified backup must be younger than this"))
    restore_test: bool = Field(True, description=(
        "restore the newest backup into a scratch database and compare its counts"))
    max_rto: Duration | None = Field(None, description=(
        "fail the restore test when the restore takes longer than this (the measured RTO)"))
    smoke_queries: list[str] = Field([], description="queries that must succeed on the restore")
    scratch_server: str | None = Field(None, description=(
        "a URL of the same engine where the restore test makes its scratch database "
        "(default: the target's own server; set it for a replica, which cannot create one)"))
    max_replica_lag: Duration = Field(timedelta(seconds=30), description=(
        "replica readiness: the most replication lag a ready replica may have"))
    require_replicas: bool = Field(False, description=(
        "fail replica readiness when the target has no replica at all (else it is skipped)"))
    documents: list[str] = Field([], description=(
        "recovery documents that must exist and be current (paths relative to the config)"))
    scripts: list[str] = Field([], description=(
        "recovery scripts that must exist, be current and be executable"))
    test_notifications: bool = Field(True, description=(
        "send a test notification through every alert channel (alerts.channels)"))
    documents_max_age: Duration = Field(timedelta(days=180), description=(
        "a document or script changed longer ago than this is stale"))
    age_identity_file: str | None = Field(None, description=(
        "file holding the age identity for encrypted backups (else WELLKEPT_AGE_IDENTITY)"))
    jobs: int = Field(1, ge=1, le=64, description="parallel restore jobs (PostgreSQL directory)")


@dataclass
class Check:
    name: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                **self.details}


class DrDrill(Task):
    """Rehearse a disaster recovery of the target and report pass/fail for each check.

    A monthly drill, made real. Five checks, each reported on its own:

    - `backup_availability`: the newest backup verified (to any tier) is younger than `rpo`,
      and its artifact and manifest are in storage with the catalogued size;
    - `restore_test` (with `restore_test: true`): the newest backup is restored into a scratch
      database, its row counts compared with the manifest and the `smoke_queries` run; it
      restores as a real recovery would (logged, unlike a routine restore test), so its time
      is the measured RTO (checked against `max_rto` when set); the result is recorded on
      the backup in the catalog;
    - `replica_readiness`: a primary's replicas are connected and streaming with at most
      `max_replica_lag` of lag; a replica's own upstream link likewise. A target without
      replicas skips the check, unless `require_replicas: true`;
    - `recovery_documents`: each of `documents` and `scripts` exists, is not empty and
      changed within `documents_max_age`; each script is executable;
    - `notifications`: every alert channel (`alerts.channels`) takes a test notification
      (skipped when none is configured, or with `test_notifications: false`).

    The run is `completed` when no check failed, `failed` when none passed, and
    `partial_failure` otherwise. Details list every check with its figures; metrics count
    them (`checks_passed`, `checks_failed`, `checks_skipped`) and carry `restore_seconds`
    and `backup_age_seconds`. The drill changes nothing on the target: the restore goes into a
    scratch database that is dropped afterwards, so a dry run only says what it would check.
    """

    kind = "dr_drill"
    Params = DrDrillParams
    requires = (Dumpable,)
    default_timeout = timedelta(hours=6)

    def run(self, ctx: RunContext) -> TaskResult:
        p: Any = self.params
        if ctx.dry_run:
            planned = ["backup_availability", *(["restore_test"] if p.restore_test else []),
                       "replica_readiness", "recovery_documents", "notifications"]
            return TaskResult(message=f"would check: {', '.join(planned)}",
                              details={"checks": planned})
        metrics: dict[str, float | int] = {}
        checks = [self._availability(ctx, metrics)]
        if p.restore_test:
            checks.append(self._restore(ctx, metrics))
        checks += [self._replicas(ctx), self._documents(ctx), self._notifications(ctx)]
        counts = {s: sum(1 for c in checks if c.status == s) for s in (PASSED, FAILED, SKIPPED)}
        metrics.update({f"checks_{s}": n for s, n in counts.items()})
        failed = [c for c in checks if c.status == FAILED]
        status = overall_status([RunStatus.FAILED if c.status == FAILED else RunStatus.COMPLETED
                                 for c in checks if c.status != SKIPPED])
        message = (f"{plural(counts[PASSED], 'check')} passed, {counts[FAILED]} failed, "
                   f"{counts[SKIPPED]} skipped")
        if failed:
            message += ": " + "; ".join(f"{c.name}: {c.message}" for c in failed)
        return TaskResult(status=status, message=message, metrics=metrics,
                          details={"checks": [c.to_json() for c in checks]},
                          errors=[f"{c.name}: {c.message}" for c in failed])

    # --- the checks ------------------------------------------------------------------------------

    def _availability(self, ctx: RunContext, metrics: dict[str, float | int]) -> Check:
        p: Any = self.params
        found = freshness(ctx.store, ctx.target_name, p.rpo, utcnow())
        if found.age is not None:
            metrics["backup_age_seconds"] = round(found.age.total_seconds(), 3)
        details = found.details()
        entry = found.newest_verified
        if not found.fresh or entry is None:
            return Check("backup_availability", FAILED, found.reason, details)
        m = entry.manifest
        try:
            storage = open_storage(entry.storage, ctx.base_dir)
            if not storage.exists(f"{m.target}/{m.name}"):
                return Check("backup_availability", FAILED,
                             f"the manifest of {m.id} is gone from {entry.storage}", details)
            size = storage.size(m.artifact)
        except (WellkeptError, OSError) as exc:
            return Check("backup_availability", FAILED, f"{entry.storage} cannot be read: "
                         f"{redact(str(exc))}", details)
        if size != m.stored_bytes:
            return Check("backup_availability", FAILED, f"{m.artifact} has {size} bytes, the "
                         f"manifest says {m.stored_bytes}", details)
        return Check("backup_availability", PASSED, found.reason, details)

    def _restore(self, ctx: RunContext, metrics: dict[str, float | int]) -> Check:
        p: Any = self.params
        found = catalog.entries(ctx.store, ctx.target_name)
        if not found:
            return Check("restore_test", FAILED, f"no backup of {ctx.target_name} to restore")
        entry = found[0]
        ctx.progress(None, "restore_test", f"restoring {entry.id} into a scratch database")
        try:
            checked = verify_and_record(ctx, entry, open_storage(entry.storage, ctx.base_dir),
                                        "restore", p, as_recovery=True)
        except (WellkeptError, OSError) as exc:
            return Check("restore_test", FAILED, redact(str(exc)), {"backup_id": entry.id})
        details = {"backup_id": entry.id, **checked.details}
        if checked.restore_seconds is not None:
            metrics["restore_seconds"] = round(checked.restore_seconds, 3)
        if not checked.passed:
            return Check("restore_test", FAILED, checked.message, details)
        rto = checked.restore_seconds or 0.0
        if p.max_rto is not None and rto > p.max_rto.total_seconds():
            return Check("restore_test", FAILED, f"the restore of {entry.id} took "
                         f"{human_age(rto)} ({rto:.1f}s), more than max_rto "
                         f"{format_duration(p.max_rto)}", details)
        return Check("restore_test", PASSED, f"{entry.id}: {checked.message}", details)

    def _replicas(self, ctx: RunContext) -> Check:
        p: Any = self.params
        if not isinstance(ctx.connector, ReplicationReporter):
            return Check("replica_readiness", SKIPPED,
                         f"{ctx.connector.name} targets have no replication to check")
        try:
            status = ctx.connector.replication_status()
        except WellkeptError as exc:
            return Check("replica_readiness", FAILED, redact(str(exc)))
        links = ([status.upstream] if status.upstream else []) + status.replicas
        details = {"role": status.role, "links": [link.describe() for link in links]}
        if not links:
            return Check("replica_readiness", FAILED if p.require_replicas else SKIPPED,
                         f"{ctx.target_name} has no replicas" + (
                             " (require_replicas is set)" if p.require_replicas else ""),
                         details)
        limit = p.max_replica_lag.total_seconds()
        problems = [f"{link.name} is {link.state}" if not link.connected else
                    f"{link.name} lags {link.lag_seconds:.1f}s (max {limit:g}s)"
                    for link in links
                    if not link.connected or (link.lag_seconds or 0.0) > limit]
        if problems:
            return Check("replica_readiness", FAILED, "; ".join(problems), details)
        what = ("its upstream" if status.role == "replica"
                else plural(len(links), "replica"))
        worst = max((link.lag_seconds or 0.0) for link in links)
        return Check("replica_readiness", PASSED, f"{what} connected, worst lag {worst:.1f}s",
                     details)

    def _notifications(self, ctx: RunContext) -> Check:
        """Every alert channel takes a test notification (the notification systems test):
        sent straight to each channel, with the usual retries."""
        from wellkept.alerts import AlertCenter

        p: Any = self.params
        if not p.test_notifications:
            return Check("notifications", SKIPPED, "test_notifications is off")
        alerts = ctx.settings.alerts if ctx.settings is not None else None
        if alerts is None or not alerts.channels:
            return Check("notifications", SKIPPED, "no alert channels configured")
        results = AlertCenter(alerts, ctx.store).test_channels(
            ctx.target_name, f"wellkept DR drill of {ctx.target_name}: a test notification, "
                             "no action needed")
        details = {"channels": [{"channel": label, "delivered": error is None,
                                 **({"error": error} if error else {})}
                                for label, error in results.items()]}
        failed = [f"{label}: {error}" for label, error in results.items() if error]
        if failed:
            return Check("notifications", FAILED, "; ".join(failed), details)
        return Check("notifications", PASSED,
                     f"{plural(len(results), 'channel')} took a test notification", details)

    def _documents(self, ctx: RunContext) -> Check:
        p: Any = self.params
        wanted = [(d, False) for d in p.documents] + [(s, True) for s in p.scripts]
        if not wanted:
            return Check("recovery_documents", SKIPPED, "no documents or scripts configured")
        limit = p.documents_max_age.total_seconds()
        now, problems, found = time.time(), [], []
        for name, is_script in wanted:
            path = ctx.resolve_path(name)
            try:
                st = path.stat()
            except OSError:
                problems.append(f"{name} is missing")
                continue
            age = now - st.st_mtime
            found.append({"path": name, "bytes": st.st_size, "age_seconds": round(age)})
            if not path.is_file() or st.st_size == 0:
                problems.append(f"{name} is empty or not a file")
            elif age > limit:
                problems.append(f"{name} is stale: changed {human_age(age)} ago (max "
                                f"{format_duration(p.documents_max_age)})")
            elif is_script and not os.access(path, os.X_OK):
                problems.append(f"{name} is not executable")
        details = {"documents": found}
        if problems:
            return Check("recovery_documents", FAILED, "; ".join(problems), details)
        return Check("recovery_documents", PASSED,
                     f"{plural(len(found), 'document')} present and current", details)
