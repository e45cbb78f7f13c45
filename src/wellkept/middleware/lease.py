"""Every run holds a lease in the store, renewed by a heartbeat thread while it works.

A run whose lease expired is presumed dead (killed, its machine lost) and is recovered by
another process. So the worker must never go on past its lease: when a renewal is refused
(the run was found orphaned and taken over) or the store cannot be reached until the lease
runs out, the run is cancelled and the statement in progress interrupted. This is the
"a worker that cannot heartbeat must kill itself" rule: a stale worker and its recovery never
both work on one job.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult

log = logging.getLogger("wellkept.lease")


class LeaseMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(run, stop), daemon=True,
                                name=f"wellkept-lease-{run.ctx.run_id[:8]}")
        beat.start()
        try:
            return call_next(run)
        finally:
            stop.set()
            beat.join(5)

    @staticmethod
    def _heartbeat(run: Run, stop: threading.Event) -> None:
        ctx = run.ctx
        every = max(0.2, run.lease.total_seconds() / 3)
        valid_until = run.started_at + run.lease
        while not stop.wait(every):
            now = datetime.now(UTC)
            try:
                renewed = ctx.store.renew_lease(ctx.run_id, ctx.attempt, now + run.lease)
            except Exception as exc:  # the store is unreachable: retry until the lease ends
                if now + run.lease / 6 < valid_until:
                    log.warning("run %s: lease renewal failed (%s); retrying", ctx.run_id, exc)
                    continue
                reason = f"could not renew its lease before it expired ({exc})"
            else:
                if renewed:
                    valid_until = now + run.lease
                    continue
                reason = "its lease was taken over (the run was presumed dead and recovered)"
            log.error("run %s of %s stops: %s", ctx.run_id, ctx.task_name, reason)
            ctx.extra_details["lease_lost"] = reason
            ctx.cancel(f"lease lost: {reason}")
            ctx.connector.interrupt()
            return
