"""Write the run's row before the work starts and complete it after the work ends."""

from __future__ import annotations

import os
import socket

from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import RunRecord, TaskResult, utcnow
from wellkept.types import RunStatus


def record_of(run: Run, result: TaskResult | None) -> RunRecord:
    ctx = run.ctx
    finished = utcnow() if result is not None else None
    details = dict(result.details) if result else {}
    if result is not None:
        details.update(ctx.extra_details)
        if ctx.statements:
            details.setdefault("statements", list(ctx.statements))
    return RunRecord(
        run_id=ctx.run_id, task=ctx.task_name, kind=ctx.kind, target=ctx.target_name,
        status=result.status if result else RunStatus.RUNNING, dry_run=ctx.dry_run,
        trigger=ctx.trigger, started_at=run.started_at, finished_at=finished,
        duration_seconds=(round((finished - run.started_at).total_seconds(), 3)
                          if finished else None),
        message=result.message if result else "", metrics=dict(result.metrics) if result else {},
        details=details, errors=list(result.errors) if result else [],
        host=socket.gethostname(), pid=os.getpid(), attempt=ctx.attempt, schedule=run.schedule)


class HistoryMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        store = run.ctx.store
        store.start_run(record_of(run, None), run.task.params.model_dump(mode="json"))
        try:
            result = call_next(run)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: still close the record
            interrupted = TaskResult(status=RunStatus.FAILED,
                                     message=f"interrupted ({type(exc).__name__})",
                                     errors=[f"interrupted ({type(exc).__name__})"])
            store.finish_run(record_of(run, interrupted))
            raise
        run.record = record_of(run, result)
        store.finish_run(run.record)
        return result
