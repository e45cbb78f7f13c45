"""health: every target and the host, checked at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus


class HealthParams(TaskParams):
    targets: list[str] = Field([], description="check only these targets (default: all)")
    disks: list[str] | None = Field(None, description=(
        "paths whose filesystems are checked (default: the config's `health.disks`)"))

    def disk_paths(self, base_dir: Path) -> list[str] | None:
        """``disks`` with relative paths taken from the config's folder; None for the
        config's ``health.disks``."""
        if not self.disks:
            return None
        paths = (Path(d).expanduser() for d in self.disks)
        return [str(p if p.is_absolute() else base_dir / p) for p in paths]


class Health(Task):
    """Check every target and the host concurrently, each within its own timeout; never raises.

    Each target is pinged and asked for the figures its engine can give cheaply: PostgreSQL
    and MySQL/MariaDB report connections against max_connections, the longest running query
    and replication lag; Redis reports memory and clients (and `degraded` while it loads its
    data); DuckDB reports `locked`, with the holder's PID, when another process holds the file,
    which counts as healthy. A target is `up`, `locked`, `degraded` (a figure at or past its
    warning threshold) or `down`, with its latency and error. The host reports CPU, memory,
    load and the usage of the disks in `health.disks` (one that cannot be read makes the
    check degraded). Every target's backup freshness is judged too, from the backups catalog
    (each `backup_freshness` instance's RPO, or 1 day for a target with a backup task): a
    stale backup is a critical `backup_freshness` alert.

    The run's details are the health report of `wellkept health --output json`: status
    (healthy, degraded or unhealthy), a 0-100 score (see docs/health.md for the formula),
    per-target results, the host, the alerts firing and the errors. Alerts are evaluated and
    kept in the store. A target going down is logged as a WARNING once, not at every check.
    The run completes whatever it finds (the findings are the report and its alerts, and the
    newest completed health run is what emergency triggers read); `wellkept health` exits 1
    while the status is unhealthy.

    It runs on the implicit `host` target; no `target:` is needed. Read-only.
    """

    kind = "health"
    Params = HealthParams
    default_timeout = timedelta(minutes=2)
    default_target = "host"
    judges_backup_freshness = True

    def run(self, ctx: RunContext) -> TaskResult:
        from wellkept.health import check_health
        from wellkept.registry import Registry

        params = self.params
        assert isinstance(params, HealthParams)
        settings = ctx.whole_settings()
        unknown = [t for t in params.targets if t not in settings.targets]
        if unknown:
            raise TaskFailed(f"targets: unknown target(s) {', '.join(unknown)}; defined: "
                             + ", ".join(sorted(settings.targets)))
        report = check_health(settings, ctx.registry or Registry.default(), store=ctx.store,
                              targets=params.targets, disks=params.disk_paths(ctx.base_dir))
        counts = {s: 0 for s in ("up", "locked", "degraded", "down")}
        for row in report["targets"].values():
            counts[row["status"]] += 1
        checked = sum(counts.values())
        message = (f"{report['status']}, score {report['score']:g}: "
                   + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                   if checked else f"{report['status']}, score {report['score']:g}: host only")
        if report["alerts"]:
            message += f"; {len(report['alerts'])} alert(s) firing"
        return TaskResult(status=RunStatus.COMPLETED, message=message,
                          metrics={"score": report["score"], "targets_checked": checked,
                                   **{f"targets_{s}": n for s, n in counts.items()}},
                          details=report)
