"""Small shared enums. Statuses and triggers are string enums so they serialise as themselves."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The state of one run. ``running`` exists only while the run is in progress.

    ``orphaned``: its worker stopped renewing its lease (killed, lost) before it finished; a
    recovery run (trigger ``recovery``, ``details.recovery.of`` naming this run) carries the
    work on. ``dead``: interrupted once more than ``recovery.max_attempts`` allows, or its
    task is not recoverable; nothing retries it."""

    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL_FAILURE = "partial_failure"
    FAILED = "failed"
    SKIPPED = "skipped"
    ORPHANED = "orphaned"
    DEAD = "dead"

    @property
    def is_final(self) -> bool:
        return self is not RunStatus.RUNNING

    @property
    def is_failure(self) -> bool:
        return self in (RunStatus.FAILED, RunStatus.PARTIAL_FAILURE, RunStatus.ORPHANED,
                        RunStatus.DEAD)


FINAL_STATUSES = tuple(s for s in RunStatus if s.is_final)


class Trigger(StrEnum):
    """What started a run."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    EMERGENCY = "emergency"
    RECOVERY = "recovery"
    API = "api"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def overall_status(statuses: list[RunStatus]) -> RunStatus:
    """Fold the statuses of several runs into one: any failure makes the whole a partial failure,
    every run failing makes it a failure, and completed/skipped runs alone make it completed."""
    if not statuses:
        return RunStatus.COMPLETED
    failed = sum(1 for s in statuses if s in (RunStatus.FAILED, RunStatus.DEAD,
                                              RunStatus.ORPHANED))
    if failed == len(statuses):
        return RunStatus.FAILED
    if failed or any(s is RunStatus.PARTIAL_FAILURE for s in statuses):
        return RunStatus.PARTIAL_FAILURE
    return RunStatus.COMPLETED
