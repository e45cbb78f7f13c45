"""Write the run's row before the work starts and complete it after the work ends."""

from __future__ import annotations

import logging
import os
import socket

from wellkept.middleware.base import Middleware, Next, Run, interruption
from wellkept.records import RunRecord, TaskResult, utcnow
from wellkept.types import RunStatus

log = logging.getLogger("wellkept.run")


def record_of(run: Run, result: TaskResult | None) -> RunRecord:
    ctx = run.ctx
    finished = utcnow() if result is not None else None
    details = dict(result.details) if result else {}
    if result is not None:
        details.update(ctx.extra_details)
        if ctx.statements:
            details.setdefault("statements", list(ctx.statements))
        if result.incomplete:
            details["incomplete"] = True
    return RunRecord(
        run_id=ctx.run_id, task=ctx.task_name, kind=ctx.kind, target=ctx.target_name,
        status=result.status if result else RunStatus.RUNNING, dry_run=ctx.dry_run,
        trigger=ctx.trigger, started_at=run.started_at, finished_at=finished,
        duration_seconds=(round((finished - run.started_at).total_seconds(), 3)
                          if finished else None),
        message=result.message if result else "", metrics=dict(result.metrics) if result else {},
        details=details, errors=list(result.errors) if result else [],
        host=socket.gethostname(), pid=os.getpid(), attempt=ctx.attempt, schedule=run.schedule,
        scheduled_for=run.scheduled_for,
        recovery_of=run.recovery.of.run_id if run.recovery else None)


class HistoryMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        store = run.ctx.store
        store.start_run(record_of(run, None), run.task.params.model_dump(mode="json"),
                        lease_until=run.started_at + run.lease,
                        deadline_at=run.started_at + run.timeout, priority=run.priority)
        try:
            result = call_next(run)
        except BaseException as exc:  # Ctrl-C, SIGTERM, SystemExit: still close the record
            why = interruption(exc)
            interrupted = run.interrupted_result or TaskResult(
                status=RunStatus.FAILED, message=why, errors=[why])
            run.record = record_of(run, interrupted)
            store.finish_run(run.record)
            self._finished(run)
            raise
        run.record = record_of(run, result)
        if not store.finish_run(run.record):
            # presumed dead and taken over while it ran (it lost its lease): the recovery
            # owns the outcome now, so this worker's result is only logged
            log.warning("run %s of %s ended %s, but it had been taken over; its row was left "
                        "as the recovery recorded it", run.ctx.run_id, run.ctx.task_name,
                        run.record.status)
        self._finished(run)
        return result

    @staticmethod
    def _finished(run: Run) -> None:
        assert run.record is not None
        for hook in run.on_finish:
            try:
                hook(run.record)
            except Exception:  # a hook's failure must not change the run's outcome
                log.exception("after run %s: a finishing step failed", run.ctx.run_id)
