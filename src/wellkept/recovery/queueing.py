"""Queue an interrupted run for recovery, or bury it as ``dead`` when it may not be retried."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from wellkept.config_coordinator import RecoverySettings
from wellkept.history import recovery_log
from wellkept.history.recovery_log import RunState
from wellkept.history.store import HistoryStore
from wellkept.types import RunStatus

log = logging.getLogger("wellkept.recovery")


def requeue_or_bury(store: HistoryStore, run: RunState, *, reason: str, detail: str,
                    now: datetime, policy: RecoverySettings, recoverable: bool,
                    counts: bool = True) -> RunStatus:
    """Queue ``run`` (already closed, or stopped at a checkpoint) for recovery; or, when its
    task is not recoverable or it has used up ``max_attempts``, end it as ``dead``.

    ``counts``: whether this interruption counts toward the cap and waits out the backoff
    (a clean shutdown does not: a job may outlive any number of restarts). A run's
    ``attempt`` is 1 plus the counted interruptions of its job. Returns the status it was
    left in."""
    recoveries = run.attempt - 1
    if not recoverable:
        return bury(store, run, now, "its task is not recoverable (recoverable=False); "
                                     "run it again by hand")
    if counts and recoveries >= policy.max_attempts:
        return bury(store, run, now, f"interrupted after {recoveries} recovery attempts "
                                     f"(recovery.max_attempts is {policy.max_attempts})")
    wait = policy.backoff * 2 ** (recoveries - 1) if recoveries and counts else timedelta(0)
    if recovery_log.enqueue(store, run, reason, detail, now, not_before=now + wait):
        log.warning("run %s of %s queued for recovery (%s): %s", run.run_id, run.task,
                    reason, detail)
    return RunStatus(run.status) if run.status != str(RunStatus.RUNNING) else RunStatus.ORPHANED


def bury(store: HistoryStore, run: RunState, now: datetime, why: str) -> RunStatus:
    message = f"dead: {why}"
    if run.status == str(RunStatus.RUNNING):
        recovery_log.close_interrupted(store, run, now, RunStatus.DEAD, message)
    else:
        recovery_log.set_status(store, run.run_id, RunStatus.DEAD, message)
    recovery_log.dequeue(store, run.run_id)
    if run.recovery_of:
        recovery_log.dequeue(store, run.recovery_of)
    recovery_log.start_attempt(
        store, run_id=run.run_id, task=run.task, attempt=run.attempt + 1, strategy="dead",
        reason=why, interrupted_at=run.heartbeat_at or run.started_at, started_at=now,
        finished_at=now, outcome=str(RunStatus.DEAD), host=socket.gethostname(),
        pid=os.getpid())
    log.error("run %s of %s is dead: %s", run.run_id, run.task, why)
    return RunStatus.DEAD
