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
from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult
from wellkept.types import RunStatus

GRACE_SECONDS = 10.0


class TimeoutMiddleware(Middleware):
    def __init__(self, grace_seconds: float = GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds

    def handle(self, run: Run, call_next: Next) -> TaskResult:
        box: dict[str, object] = {}

        def work() -> None:
            try:
                box["result"] = call_next(run)
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=work, name=f"wellkept-run-{run.ctx.run_id[:8]}",
                                  daemon=True)
        worker.start()
        try:
            worker.join(run.timeout.total_seconds())
        except BaseException:  # Ctrl-C, SIGTERM: cancel on the server too, then leave
            run.ctx.cancel("interrupted")
            run.ctx.connector.interrupt()
            worker.join(self.grace_seconds)
            raise
        if worker.is_alive():
            reason = f"timed out after {format_duration(run.timeout)}"
            run.ctx.cancel(reason)
            run.ctx.connector.interrupt()
            worker.join(self.grace_seconds)
            if worker.is_alive():
                raise TaskTimeout(f"{reason} (still unwinding; its target lock is held until "
                                  "then)")
            partial = box.get("result")
            if isinstance(partial, TaskResult):
                # the task stopped at the cancellation and reported what it had done
                partial.status = (RunStatus.FAILED if partial.status is RunStatus.FAILED
                                  else RunStatus.PARTIAL_FAILURE)
                partial.message = f"{reason}: {partial.message}"
                partial.errors = [*partial.errors, reason]
                partial.incomplete = True
                return partial
            raise TaskTimeout(f"{reason} (the statement was interrupted)")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        result = box["result"]
        assert isinstance(result, TaskResult)
        return result
