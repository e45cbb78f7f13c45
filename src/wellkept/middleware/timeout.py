"""Enforce a run's time limit.

The rest of the chain runs in a worker thread. When the limit passes, the run is cancelled (long
tasks notice at their next step) and the connector interrupts the statement in progress. The
worker then has a grace period to unwind, releasing its own locks, before the run is recorded as
timed out.
"""

from __future__ import annotations

import threading

from wellkept.durations import format_duration
from wellkept.errors import TaskTimeout
from wellkept.middleware.base import Middleware, Next, Run, interruption
from wellkept.records import TaskResult
from wellkept.types import RunStatus

GRACE_SECONDS = 10.0


class TimeoutMiddleware(Middleware):
    def __init__(self, grace_seconds: float = GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds

    def handle(self, run: Run, call_next: Next) -> TaskResult:
        box: dict[str, object] = {}
        # waited on instead of Thread.join: on Python 3.11 a join that Ctrl-C interrupts marks
        # the thread stopped while it still runs, so a later join would not wait at all
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = call_next(run)
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"wellkept-run-{run.ctx.run_id[:8]}",
                                  daemon=True)
        worker.start()
        try:
            done.wait(run.timeout.total_seconds())
        except BaseException as exc:  # Ctrl-C, SIGTERM: cancel on the server too, then leave
            run.ctx.cancel("interrupted")
            run.ctx.connector.interrupt()
            if done.wait(self.grace_seconds) and isinstance(box.get("result"), TaskResult):
                # it stopped at the cancellation and said what it had committed: keep that
                run.interrupted_result = _cut_short(box["result"],  # type: ignore[arg-type]
                                                    interruption(exc))
            raise
        if not done.is_set():
            reason = f"timed out after {format_duration(run.timeout)}"
            run.ctx.cancel(reason)
            run.ctx.connector.interrupt()
            if not done.wait(self.grace_seconds):
                raise TaskTimeout(f"{reason} (still unwinding; its target lock is held until "
                                  "then)")
            partial = box.get("result")
            if isinstance(partial, TaskResult):
                # the task stopped at the cancellation and reported what it had done
                return _cut_short(partial, reason)
            raise TaskTimeout(f"{reason} (the statement was interrupted)")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        result = box["result"]
        assert isinstance(result, TaskResult)
        return result


def _cut_short(partial: TaskResult, reason: str) -> TaskResult:
    """The result of a task that stopped early at a cancellation: a partial failure (or still
    a failure), incomplete, so that the next run continues from its last checkpoint."""
    partial.status = (RunStatus.FAILED if partial.status is RunStatus.FAILED
                      else RunStatus.PARTIAL_FAILURE)
    partial.message = f"{reason}: {partial.message}"
    partial.errors = [*partial.errors, reason]
    partial.incomplete = True
    return partial
