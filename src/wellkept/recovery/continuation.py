"""The recovery step of every run: decide how it continues interrupted work, and record it.

The engine calls :func:`prepare` just before ``Task.run``, under the target lock, for every
run that is not a dry run:

- a **recovery run** (it carries a ``RecoverySpec``: the coordinator or ``wellkept recover``
  made it) applies the strategy chosen here: validate, resume or restart;
- any **other run** first looks at the previous run of the same task on the same target. When
  that one was interrupted (its process died: under the target lock a ``running`` row can only
  be a dead one; or it was orphaned, or it stopped early with a checkpoint), this run takes its
  work over: resume from the checkpoint or restart, never validate-only (the new run does its
  own work). The predecessor is closed and dequeued, so nothing recovers it a second time.

Either way one attempt row is written, and a finishing hook closes it with the run's outcome:
it dequeues what was recovered, queues a failed recovery run again (up to the cap), and
queues a run that a shutdown stopped at a checkpoint.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wellkept.config_coordinator import RecoverySettings
from wellkept.history import recovery_log
from wellkept.history.recovery_log import RunState
from wellkept.liveness import process_alive
from wellkept.records import RunRecord, TaskResult
from wellkept.recovery.queueing import requeue_or_bury
from wellkept.recovery.strategy import Decision, Strategy, choose, resume_decision
from wellkept.types import RunStatus

if TYPE_CHECKING:
    from wellkept.context import RunContext
    from wellkept.middleware.base import Run
    from wellkept.task import Task

#: statuses of a finished predecessor whose checkpoint a new run may continue from
_STOPPED_EARLY = {str(RunStatus.PARTIAL_FAILURE), str(RunStatus.FAILED), str(RunStatus.DEAD)}


def prepare(run: Run, policy: RecoverySettings) -> TaskResult | None:
    """Set ``ctx.resumed_from`` (or validate) for this run; a TaskResult means the work is
    already done (validated) and the task must not run."""
    if run.ctx.dry_run:
        return None
    now = datetime.now(UTC)
    if run.recovery is not None:
        interrupted: RunState | None = run.recovery.of
        queued, reason = True, run.recovery.reason
        interrupted_at = run.recovery.interrupted_at
    else:
        interrupted, queued, reason = _take_over(run, policy, now)
        interrupted_at = interrupted.heartbeat_at or interrupted.started_at \
            if interrupted else now
    if interrupted is None:
        run.on_finish.append(lambda record: _after_plain(run, record, policy))
        return None
    try:
        decision, result = _decide(run, interrupted, policy,
                                   allow_validate=run.recovery is not None)
    except BaseException:  # e.g. the validate hook could not reach the target
        if queued:  # hand the entry back: the job is still interrupted
            claimer = run.recovery.claimer if run.recovery else f"run:{run.ctx.run_id}"
            recovery_log.postpone(run.ctx.store, interrupted.run_id, claimer,
                                  now + policy.backoff)
        raise
    ctx = run.ctx
    attempt = run.recovery.attempt if run.recovery else interrupted.attempt + 1
    info: dict[str, Any] = {"of": interrupted.run_id, "strategy": str(decision.strategy),
                            "reason": decision.reason, "attempt": attempt,
                            "interrupted": reason}
    if decision.checkpoint is not None:
        info["checkpoint"] = {k: decision.checkpoint[k] for k in ("name", "percent")}
    ctx.extra_details["recovery"] = info
    attempt_id = recovery_log.start_attempt(
        ctx.store, run_id=interrupted.run_id, recovery_run_id=ctx.run_id, task=ctx.task_name,
        attempt=attempt, strategy=str(decision.strategy),
        reason=decision.reason,
        checkpoint_name=decision.checkpoint["name"] if decision.checkpoint else None,
        checkpoint_percent=decision.checkpoint["percent"] if decision.checkpoint else None,
        interrupted_at=interrupted_at, started_at=now, host=socket.gethostname(),
        pid=os.getpid())
    run.on_finish.append(lambda record: _after_recovery(run, record, interrupted, attempt_id,
                                                        queued, policy))
    return result


# --- choosing -----------------------------------------------------------------------------------


def preview(task: Task, ctx: RunContext, interrupted: RunState, policy: RecoverySettings, *,
            allow_validate: bool = True) -> Decision:
    """The strategy recovery would choose now (``wellkept recover --dry-run``); nothing runs,
    the validate hook is not called."""
    return _first_choice(task, ctx, interrupted, policy, allow_validate)[0]


def _first_choice(task: Task, ctx: RunContext, interrupted: RunState, policy: RecoverySettings,
                  allow_validate: bool) -> tuple[Decision, dict[str, Any] | None, str | None,
                                                 float]:
    checkpoint, problem = _checkpoint(task, ctx, interrupted)
    resume_above = task.resume_above if task.resume_above is not None else policy.resume_above
    decision = choose(progress=interrupted.progress_percent, checkpoint=checkpoint,
                      checkpoint_problem=problem, resumable=task.resumable,
                      has_validate=task.has_validate(), resume_above=resume_above,
                      validate_above=policy.validate_above, allow_validate=allow_validate)
    return decision, checkpoint, problem, resume_above


def _decide(run: Run, interrupted: RunState, policy: RecoverySettings, *,
            allow_validate: bool) -> tuple[Decision, TaskResult | None]:
    ctx, task = run.ctx, run.task
    decision, checkpoint, problem, resume_above = _first_choice(task, ctx, interrupted, policy,
                                                                allow_validate)
    if decision.strategy is Strategy.VALIDATE:
        ctx.resumed_from = _view(interrupted, checkpoint, Strategy.VALIDATE) \
            if checkpoint is not None else None
        if task.validate(ctx):
            where = (f" (checkpoint {checkpoint['name']!r} at {checkpoint['percent']:g}%)"
                     if checkpoint else "")
            return decision, TaskResult(
                message=f"validated: the interrupted run {interrupted.run_id} had finished its "
                        f"work{where}; nothing was done again",
                details={"validated": True})
        done = max(interrupted.progress_percent or 0.0,
                   checkpoint["percent"] if checkpoint else 0.0)
        fallback = resume_decision(done, checkpoint, problem, task.resumable, resume_above)
        decision = Decision(
            fallback.strategy if fallback else Strategy.RESTART,
            "validation found work left; " + (fallback.reason if fallback else "restarting"),
            fallback.checkpoint if fallback else None)
    if decision.strategy is Strategy.RESUME:
        assert checkpoint is not None
        ctx.resumed_from = _view(interrupted, checkpoint, Strategy.RESUME)
        ctx.extra_details["resumed_from"] = {k: ctx.resumed_from[k] for k in
                                             ("run_id", "status", "name", "percent")}
        ctx.seed_checkpoint(checkpoint["name"], checkpoint["percent"], checkpoint["data"])
    else:
        ctx.resumed_from = None
    return decision, None


def _checkpoint(task: Task, ctx: RunContext,
                interrupted: RunState) -> tuple[dict[str, Any] | None, str | None]:
    """The interrupted run's last checkpoint, and why it cannot be used (None if it can)."""
    point = ctx.store.latest_checkpoint(interrupted.run_id)
    if point is None:
        return None, None
    if point["attempt"] != interrupted.attempt:
        return point, f"written by attempt {point['attempt']}, not {interrupted.attempt}"
    identity = task.resume_identity()
    if {k: interrupted.params.get(k) for k in identity} != identity:
        return point, "the task's parameters changed since; it is another job now"
    if not isinstance(point.get("data"), dict):
        return point, "its data is not a JSON object"
    try:
        valid = task.checkpoint_valid(ctx, _view(interrupted, point, Strategy.RESUME))
    except Exception as exc:  # a check that cannot run proves nothing: do not resume
        return point, f"checking it failed: {exc}"
    return point, None if valid else "the task found it no longer valid"


def _view(run: RunState, point: dict[str, Any], strategy: Strategy) -> dict[str, Any]:
    return {"run_id": run.run_id, "status": run.status, "name": point["name"],
            "percent": point["percent"], "data": point["data"], "strategy": str(strategy)}


# --- a new run taking over ----------------------------------------------------------------------


def _take_over(run: Run, policy: RecoverySettings,
               now: datetime) -> tuple[RunState | None, bool, str]:
    """The interrupted predecessor this run continues, claimed so nobody else recovers it:
    (run, whether it was queued, why it counts as interrupted), or (None, False, "")."""
    ctx = run.ctx
    prev = recovery_log.previous_run(ctx.store, ctx.task_name, ctx.kind, ctx.target_name,
                                     ctx.run_id)
    if prev is None:
        return None, False, ""
    claimer = f"run:{ctx.run_id}"
    queued = recovery_log.entry(ctx.store, prev.run_id)
    if queued is not None and not recovery_log.claim(ctx.store, prev.run_id, claimer, now):
        return None, False, ""  # another process is recovering it now
    found = _interrupted(run, prev, queued is not None, policy, now)
    if found is None:
        if queued is not None:
            recovery_log.release(ctx.store, prev.run_id, claimer)
        return None, False, ""
    return found, queued is not None, queued.reason if queued else (
        "orphaned" if found.status == str(RunStatus.ORPHANED) else "stopped early")


def _interrupted(run: Run, prev: RunState, queued: bool, policy: RecoverySettings,
                 now: datetime) -> RunState | None:
    ctx = run.ctx
    if prev.status == str(RunStatus.RUNNING):
        why = _dead_because(run, prev, policy, now)
        if why is None or not recovery_log.close_interrupted(
                ctx.store, prev, now, RunStatus.ORPHANED,
                f"orphaned: {why}; run {ctx.run_id} took its work over"):
            return None
        recovery_log.close_open_attempts(ctx.store, prev.run_id, now, str(RunStatus.ORPHANED),
                                         why)
        return recovery_log.get_state(ctx.store, prev.run_id)
    if prev.status == str(RunStatus.ORPHANED) and queued:
        return prev
    if prev.status in _STOPPED_EARLY and run.task.resumable \
            and ctx.store.latest_checkpoint(prev.run_id) is not None:
        return prev
    return None


def _dead_because(run: Run, prev: RunState, policy: RecoverySettings,
                  now: datetime) -> str | None:
    alive = process_alive(prev.host_id or "", prev.pid, prev.started_at)
    if alive is False:
        return f"its process (pid {prev.pid} on {prev.host}) is gone"
    if alive is None and run.task.mutating and prev.progress_at is not None:
        # it had begun its work (progress comes only once the target lock is held) and we
        # hold that lock now: its worker, on another machine, is gone. A run that never
        # reported progress may still be waiting for the lock, alive: only its lease tells
        return "its worker is gone (its run was still 'running' while this run held the " \
               "target lock)"
    if prev.lease_expired(now, policy.lease):
        return "its lease expired"
    return None


# --- after the run ------------------------------------------------------------------------------


def _after_recovery(run: Run, record: RunRecord, interrupted: RunState, attempt_id: int,
                    queued: bool, policy: RecoverySettings) -> None:
    store, now = run.ctx.store, datetime.now(UTC)
    error = record.errors[0] if record.errors and record.status.is_failure else None
    recovery_log.finish_attempt(store, attempt_id, now, str(record.status), error,
                                recovery_run_id=record.run_id)
    recovery_log.annotate(store, interrupted.run_id, "recovered_by",
                          {"run_id": record.run_id, "status": str(record.status)})
    claimer = run.recovery.claimer if run.recovery else f"run:{record.run_id}"
    if record.status is RunStatus.SKIPPED and run.recovery is not None:
        # it could not start (the target was busy): try again later, it is still interrupted
        recovery_log.postpone(store, interrupted.run_id, claimer, now + policy.backoff)
        return
    if queued:
        recovery_log.dequeue(store, interrupted.run_id)
    if run.recovery is not None and record.status.is_failure:
        state = recovery_log.get_state(store, record.run_id)
        if state is not None:
            shutdown = bool(record.details.get("incomplete")) and run.ctx.stop_requested
            requeue_or_bury(store, state, reason="shutdown" if shutdown else "failed",
                            detail=f"its recovery run ended {record.status}: {record.message}",
                            now=now, policy=policy, recoverable=run.task.recoverable,
                            counts=not shutdown)
        return
    _after_plain(run, record, policy)


def _after_plain(run: Run, record: RunRecord, policy: RecoverySettings) -> None:
    """A run a shutdown stopped at a checkpoint waits in the queue for the next coordinator
    (a clean stop: it does not count toward ``max_attempts``)."""
    if not (record.details.get("incomplete") and run.ctx.stop_requested):
        return
    state = recovery_log.get_state(run.ctx.store, record.run_id)
    if state is not None:
        requeue_or_bury(run.ctx.store, state, reason="shutdown",
                        detail=f"stopped by a shutdown: {record.message}",
                        now=datetime.now(UTC), policy=policy,
                        recoverable=run.task.recoverable, counts=False)
