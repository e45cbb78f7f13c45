"""What fires an alert: thresholds on figures, and the outcome of runs.

An ``Observation`` is one look at one alert key (name, target, subject): firing at a severity,
or clear. Thresholds left out of ``alerts.thresholds`` keep seed 001's defaults; a threshold
given replaces the default pair whole, so `{warning: 90}` has no critical level.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wellkept.types import RunStatus, Severity

if TYPE_CHECKING:
    from wellkept.config import AlertSettings, Settings
    from wellkept.records import RunRecord

#: seed 001's alert thresholds (CONTRACT §1): name -> (warning, critical)
DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "connection_percent": (80.0, 95.0),
    "query_seconds": (2.0, 5.0),
    "replication_lag_seconds": (5.0, 30.0),
    "cpu_percent": (80.0, None),
    "memory_percent": (85.0, None),
    "disk_percent": (85.0, 95.0),
}
#: what each threshold measures, for messages
LABELS = {
    "connection_percent": "connections in use (% of max_connections)",
    "query_seconds": "longest running query (s)",
    "replication_lag_seconds": "replication lag (s)",
    "cpu_percent": "CPU use (%)",
    "memory_percent": "memory use (%)",
    "disk_percent": "disk use (%)",
}
#: figures of a target (its health details or a run's metrics) judged against thresholds
TARGET_FIGURES = ("connection_percent", "query_seconds", "replication_lag_seconds")
HOST_FIGURES = ("cpu_percent", "memory_percent")
#: alert names raised by something other than a threshold
TARGET_DOWN = "target_down"
TARGET_DEGRADED = "target_degraded"
TASK_FAILURE = "task_failure"
MISSED_SCHEDULE = "missed_schedule"
BACKUP_FRESHNESS = "backup_freshness"
#: the subject of the default backup-freshness rule's alerts (a target with a backup task and
#: no backup_freshness instance): the task name of `wellkept run backup_freshness`
DEFAULT_FRESHNESS = "backup_freshness"


@dataclass(frozen=True)
class Observation:
    """One look at an alert key: ``severity`` None means the condition is clear."""

    name: str
    target: str
    severity: Severity | None
    value: float | None = None
    message: str = ""
    subject: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.target, self.subject)


def limits(settings: AlertSettings | None, name: str) -> tuple[float | None, float | None]:
    given = settings.thresholds.get(name) if settings else None  # type: ignore[call-overload]
    if given is not None:
        return given.warning, given.critical
    return DEFAULTS.get(name, (None, None))


def judge(settings: AlertSettings | None, name: str, target: str, value: float | None,
          subject: str = "") -> Observation:
    """A figure against its threshold: critical at or past the critical level, warning at or
    past the warning level, clear below (or when there is no figure to judge)."""
    warning, critical = limits(settings, name)
    severity: Severity | None = None
    level = None
    if value is not None:
        if critical is not None and value >= critical:
            severity, level = Severity.CRITICAL, critical
        elif warning is not None and value >= warning:
            severity, level = Severity.WARNING, warning
    where = f"{target} {subject}".strip()
    message = (f"{where}: {LABELS.get(name, name)} is {value:g}, at or past the {severity} "
               f"threshold {level:g}" if severity is not None and value is not None else
               f"{where}: {LABELS.get(name, name)} is back under its thresholds")
    return Observation(name, target, severity, value, message, subject)


def figure_observations(settings: AlertSettings | None, target: str,
                        figures: Mapping[str, object], names: Iterable[str]) -> list[Observation]:
    """Judge each of ``names`` that ``figures`` holds as a number."""
    out = []
    for name in names:
        value = figures.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(judge(settings, name, target, float(value)))
    return out


def health_observations(settings: AlertSettings | None, report: Mapping[str, Any],
                        declared: Mapping[str, str | None] | None = None) -> list[Observation]:
    """Every key a health check can speak for: each target down or not (and its figures when
    it answered), the host's CPU and memory, and each disk path checked. With ``declared``
    (each target's own word on why it cannot fully serve, before the thresholds add theirs to
    ``details.degraded``), each answering target's ``target_degraded`` too."""
    out: list[Observation] = []
    for name, row in (report.get("targets") or {}).items():
        down = row.get("status") == "down"
        out.append(Observation(
            TARGET_DOWN, name, Severity.CRITICAL if down else None, None,
            f"{name} is down: {row.get('error')}" if down else f"{name} answers again"))
        if not down:
            if declared is not None:
                out.append(degraded_observation(name, declared.get(name)))
            out += figure_observations(settings, name, row.get("details") or {},
                                       TARGET_FIGURES)
    host = report.get("host") or {}
    out += figure_observations(settings, "host", host, HOST_FIGURES)
    for disk in host.get("disk") or []:
        out.append(judge(settings, "disk_percent", "host", disk.get("percent"), disk["path"]))
    return out


def degraded_observation(target: str, reason: str | None) -> Observation:
    """A target that answers but says itself that it cannot fully serve (a replica that does
    not replicate, Redis loading its data): a warning, cleared once it serves again. Figures
    past a threshold have their own alerts and are not this one."""
    if reason:
        return Observation(TARGET_DEGRADED, target, Severity.WARNING, None,
                           f"{target} is degraded: {reason}")
    return Observation(TARGET_DEGRADED, target, None, None, f"{target} serves fully again")


#: alerts whose subject is a task (an instance, or a kind run directly)
TASK_SUBJECTS = (TASK_FAILURE, BACKUP_FRESHNESS)


@dataclass(frozen=True)
class Judges:
    """What still judges the alerts no task instance names: the disk paths some health check
    looks at (``health.disks`` and each health instance's own ``disks``), and the targets
    whose default backup-freshness alert something still judges (a backup task with no
    backup_freshness instance, or a ``backup_freshness`` kind run on it in the history)."""

    disks: Collection[str] = ()
    default_freshness: Collection[str] = ()


def orphaned(alert: Mapping[str, Any], settings: Settings, kinds: Collection[str],
             default_target: Callable[[str], str | None],
             judges: Judges = Judges()) -> str | None:
    """Why a stored alert can no longer be judged, or None: its schedule is gone or disabled,
    its target is gone, its task is gone or no longer runs on that target, no health check
    looks at its disk, or it is the default backup-freshness rule's and nothing judges that
    for its target (see ``Judges``), so no later check or run would ever resolve it.
    ``default_target(kind)`` is that kind's default target (asked only for the instances
    alerts name)."""
    name, target, subject = alert["name"], alert["target"], alert.get("subject") or ""
    if name == MISSED_SCHEDULE:
        schedule = settings.schedules.get(target)
        if schedule is None:
            return f"schedule {target} is no longer in the config"
        return None if schedule.enabled else f"schedule {target} is disabled"
    if target != "host" and target not in settings.targets:
        return f"target {target} is no longer in the config"
    if name == "disk_percent" and target == "host" and subject and subject not in judges.disks:
        return f"disk {subject} is no longer checked (health.disks)"
    if (name == BACKUP_FRESHNESS and subject == DEFAULT_FRESHNESS
            and subject not in settings.tasks and target not in judges.default_freshness):
        return f"{target} has no backup task any more"
    if name not in TASK_SUBJECTS or not subject:
        return None
    instance = settings.tasks.get(subject)
    if instance is None:
        return None if subject in kinds else f"task {subject} is no longer in the config"
    if target not in instance.runs_on(default_target(instance.kind)):
        return f"task {subject} no longer runs on {target}"
    return None


def judged(record: RunRecord) -> bool:
    """Whether a run raises and resolves alerts: dry runs do not (they prove nothing about
    the real work), nor skipped runs (a skip says nothing new about the task's health)."""
    return not record.dry_run and record.status not in (RunStatus.SKIPPED, RunStatus.RUNNING)


def run_observations(settings: AlertSettings | None, record: RunRecord) -> list[Observation]:
    """After a run: its failure (or recovery) and any threshold figure in its metrics."""
    if not judged(record):
        return []
    if isinstance(record.details.get("fresh"), bool):
        # a backup-freshness verdict (backup_freshness): it is its own alert, saying what the
        # failure of the check would only say less well
        age = record.details.get("age_seconds")
        return [Observation(BACKUP_FRESHNESS, record.target,
                            None if record.details["fresh"] else Severity.CRITICAL,
                            float(age) if age is not None else None, record.message,
                            record.task)]
    failed = record.status.is_failure
    severity = (Severity.CRITICAL if record.status is RunStatus.FAILED else
                Severity.WARNING if failed else None)
    message = (f"{record.task} on {record.target} ended {record.status}: {record.message}"
               if failed else f"{record.task} on {record.target} completed again")
    out = [Observation(TASK_FAILURE, record.target, severity, None, message, record.task)]
    out += figure_observations(settings, record.target, record.metrics,
                               (*TARGET_FIGURES, *HOST_FIGURES))
    return out
