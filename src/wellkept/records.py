"""Records that cross module boundaries: what a task returns, what a run leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wellkept.types import RunStatus, Trigger

Metrics = dict[str, float | int]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as every JSON output uses."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TaskResult:
    """What a task hands back: its status, a one-line message, counters and free-form details."""

    status: RunStatus = RunStatus.COMPLETED
    message: str = ""
    metrics: Metrics = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: the task stopped before it finished its work (asked to stop, cancelled, time limit);
    #: its last checkpoint says where, and a recovery or the next run carries on from there
    incomplete: bool = False


def stopped_early(message: str, metrics: Metrics, details: dict[str, Any], *,
                  at_checkpoint: str | None = None) -> TaskResult:
    """What a task stopped midway hands back once it has done some of its work: a partial
    failure, incomplete, so that the next run (or a recovery) carries on, with the figures of
    what was done. Cancelled (a time limit, Ctrl-C, SIGTERM, a lost target lock) before it did
    anything, a task raises instead (``check_cancelled``). ``at_checkpoint``: the reason a
    shutdown gave when it asked the run to stop at its next checkpoint (``StopRequested``)."""
    if at_checkpoint is None:
        details["stopped_by"] = "cancelled"
        return TaskResult(status=RunStatus.PARTIAL_FAILURE, message=message, metrics=metrics,
                          details=details, incomplete=True)
    details["stopped_by"] = "stop"
    return TaskResult(status=RunStatus.PARTIAL_FAILURE, metrics=metrics, details=details,
                      message=f"{message}, then stopped at a checkpoint ({at_checkpoint}); "
                              "recovery resumes from it",
                      errors=[f"stopped: {at_checkpoint}"], incomplete=True)


@dataclass(frozen=True)
class Action:
    """One maintenance statement a connector proposes: what, on which object, and why.

    Tasks plan a list of actions, print them on a dry run, and otherwise hand each one back to
    the connector that made it (``Connector.apply``). ``meta`` is private to that connector.
    """

    object: str
    statement: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"object": self.object, "statement": self.statement, "reason": self.reason,
                "evidence": self.evidence}


@dataclass(frozen=True)
class RunRecord:
    """One run as the history keeps it and the JSON output shows it (CONTRACT §3, RUN)."""

    run_id: str
    task: str
    kind: str
    target: str
    status: RunStatus
    dry_run: bool
    trigger: Trigger
    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    message: str = ""
    metrics: Metrics = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    host: str = ""
    pid: int = 0
    attempt: int = 1
    schedule: str | None = None
    #: the slot a scheduled run was for (UTC)
    scheduled_for: datetime | None = None
    #: the interrupted run this one recovers (its details say how: ``details["recovery"]``)
    recovery_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "kind": self.kind,
            "target": self.target,
            "status": str(self.status),
            "dry_run": self.dry_run,
            "trigger": str(self.trigger),
            "started_at": iso_z(self.started_at),
            "finished_at": iso_z(self.finished_at),
            "duration_seconds": self.duration_seconds,
            "message": self.message,
            "metrics": dict(self.metrics),
            "details": dict(self.details),
            "errors": list(self.errors),
        }
