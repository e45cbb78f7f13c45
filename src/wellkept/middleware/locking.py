"""One mutating run per database at a time, across processes (and machines, on a shared store).

The lock key is the connector's identity of the database, not the target's name, so two target
names pointing at the same database still exclude each other. Read-only tasks and dry runs take
no lock. A run that cannot get the lock within ``lock_wait`` ends as ``skipped``, naming the
holder.

On a PostgreSQL store the lock can be lost while held (the store restarted, the connection
dropped) and another process may take it. The run is then stopped like one whose lease was lost:
cancelled, its statement interrupted, and ``details.lock_lost`` says why.
"""

from __future__ import annotations

import os
import socket
import time

from wellkept.durations import format_duration
from wellkept.errors import LockBusy, Skip
from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult, iso_z, utcnow


class LockingMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        ctx = run.ctx
        if not run.task.mutating or ctx.dry_run:
            return call_next(run)
        holder = {"run_id": ctx.run_id, "task": ctx.task_name, "pid": os.getpid(),
                  "host": socket.gethostname()}
        t0 = time.monotonic()

        def lost(reason: str) -> None:
            ctx.extra_details["lock_lost"] = reason
            ctx.cancel(f"target lock lost: {reason}")
            ctx.connector.interrupt()

        try:
            lock = ctx.store.lock(f"target:{ctx.connector.identity()}",
                                  run.lock_wait.total_seconds(), holder,
                                  lambda: ctx.cancelled, lost)
            lock.__enter__()
        except LockBusy as exc:
            ctx.check_cancelled()  # the run's time limit passed while it waited
            raise Skip(f"target {ctx.target_name} is busy: locked by {exc.holder}; waited "
                       f"{format_duration(run.lock_wait)}") from None
        try:
            ctx.extra_details["lock"] = {"waited_seconds": round(time.monotonic() - t0, 3),
                                         "acquired_at": iso_z(utcnow())}
            result = call_next(run)
            ctx.extra_details["lock"]["released_at"] = iso_z(utcnow())
            return result
        finally:
            lock.__exit__(None, None, None)
