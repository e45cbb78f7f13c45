"""backup_freshness: fail when the newest verified backup of a target is older than its RPO."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from wellkept.backups.freshness import DEFAULT_RPO, DEFAULT_TIER, freshness
from wellkept.context import RunContext
from wellkept.durations import Duration
from wellkept.records import TaskResult, utcnow
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus


class BackupFreshnessParams(TaskParams):
    rpo: Duration = Field(DEFAULT_RPO, description=(
        "the recovery point objective: the newest verified backup must be younger than this"))
    tier: Literal["checksum", "readable", "restore"] = Field(DEFAULT_TIER, description=(
        "the verification a backup needs to count (a restore-verified backup also counts for "
        "checksum)"))
    backup_task: str | None = Field(None, description=(
        "count only the backups written by this task instance (default: any)"))


class BackupFreshness(Task):
    """Check that the target's newest *verified* backup is younger than its RPO.

    It reads the backups catalog in the history store (`wellkept backups list`), so it costs
    nothing on the target and works for every engine. A backup counts only once it has been
    verified to at least `tier` (by the backup's own `verify`, or by `verify_backup`): a backup
    nobody has checked does not move the recovery point. The run fails, naming the newest
    verified backup and its age, when there is none or it is older than `rpo`, and says so
    when a newer backup exists but is unverified or failed its verification. Metrics:
    `backup_age_seconds` and `rpo_seconds`. A failing check raises the `backup_freshness`
    alert (not `task_failure`). The instance's rule is also judged after every health check
    and every other run, under the same alert, so a stale backup is noticed at the next look
    even between scheduled checks; schedule it as well (hourly, say) to be told when a
    target has no backup at all.
    """

    kind = "backup_freshness"
    Params = BackupFreshnessParams
    default_timeout = timedelta(minutes=5)

    def run(self, ctx: RunContext) -> TaskResult:
        p: Any = self.params
        found = freshness(ctx.store, ctx.target_name, p.rpo, utcnow(), tier=p.tier,
                          task=p.backup_task)
        metrics: dict[str, float | int] = {"rpo_seconds": p.rpo.total_seconds()}
        if found.age is not None:
            metrics["backup_age_seconds"] = round(found.age.total_seconds(), 3)
        if not found.fresh:
            return TaskResult(status=RunStatus.FAILED, message=found.reason, metrics=metrics,
                              details=found.details(), errors=[found.reason])
        return TaskResult(message=found.reason, metrics=metrics, details=found.details())
