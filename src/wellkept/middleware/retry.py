"""Retry a run after a transient error, with exponential backoff.

Only errors marked transient are retried: a target that refused the connection or was
unavailable (``ConnectionFailed``, ``Unavailable``) and a task's own ``Retry``. A bug, a
failed check or a timeout is not. The task instance's ``retries`` (default 0) says how many
more attempts are made; the waits are ``retry_backoff``, then twice that, and so on (at most
an hour), or the ``Retry`` exception's own ``delay_seconds``. The wait ends early when the run
is cancelled or asked to stop, and then the error stands. Each retry is listed in the run's
``details.retries``.
"""

from __future__ import annotations

import logging

from wellkept.errors import WellkeptError
from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult, iso_z, utcnow
from wellkept.redact import redact

log = logging.getLogger("wellkept.retry")
MAX_WAIT_SECONDS = 3600.0


def backoff_seconds(first: float, retry_number: int) -> float:
    """The wait before retry ``retry_number`` (1-based): first, 2x, 4x … capped at an hour."""
    return float(min(MAX_WAIT_SECONDS, first * 2.0 ** (retry_number - 1)))


class RetryMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        ctx = run.ctx
        done = 0
        while True:
            try:
                return call_next(run)
            except WellkeptError as exc:
                if not exc.transient or done >= run.retries or ctx.cancelled \
                        or ctx.stop_requested:
                    raise
                done += 1
                delay = getattr(exc, "delay_seconds", None)
                wait = float(delay) if delay is not None else backoff_seconds(
                    run.retry_backoff.total_seconds(), done)
                text = redact(str(exc))
                log.warning("%s on %s: %s; retry %d of %d in %.1fs", ctx.task_name,
                            ctx.target_name, text, done, run.retries, wait)
                ctx.extra_details.setdefault("retries", []).append(
                    {"retry": done, "error": text, "wait_seconds": round(wait, 3),
                     "at": iso_z(utcnow())})
                ctx.connector.close()  # the next attempt connects afresh
                if ctx.wait_unless_stopped(wait):
                    raise
