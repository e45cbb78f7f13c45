"""Turn whatever a task raises into a run status, so one failure never stops the others.

Expected conditions (target down, locked, not applicable) are logged once as WARNING with no
traceback; anything else is a bug, logged as ERROR, with the traceback kept in the run's errors.
A target another process holds (``Locked``) is in use, not broken: the run is ``skipped``. Runs
that could not reach their target, or found it locked, say so in ``details.availability``, from
which a batch reports per-service availability (seed 000).
"""

from __future__ import annotations

import logging
import traceback

from wellkept.errors import (
    ConnectionFailed,
    ConnectorError,
    Locked,
    NotApplicable,
    Skip,
    StopRequested,
    TaskError,
    TaskFailed,
    TaskTimeout,
    WellkeptError,
)
from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult
from wellkept.redact import redact
from wellkept.types import RunStatus

log = logging.getLogger("wellkept.run")


class IsolationMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        ctx = run.ctx
        label = f"{ctx.task_name} on {ctx.target_name}"
        try:
            result = call_next(run)
        except (Skip, NotApplicable) as exc:
            log.info("%s skipped: %s", label, redact(str(exc)))
            return TaskResult(status=RunStatus.SKIPPED, message=redact(str(exc)))
        except Locked as exc:
            text = redact(str(exc))
            log.warning("%s skipped: %s", label, text)
            ctx.extra_details["availability"] = {"status": "locked", "error": text,
                                                 "holder_pid": exc.holder_pid}
            return TaskResult(status=RunStatus.SKIPPED, message=f"target in use: {text}")
        except StopRequested as exc:  # stopped where a recovery can resume it
            text = redact(str(exc))
            log.warning("%s %s", label, text)
            return TaskResult(status=RunStatus.PARTIAL_FAILURE, message=text, errors=[text],
                              incomplete=True)
        except (ConnectorError, TaskFailed, TaskTimeout) as exc:
            text = redact(str(exc))
            log.warning("%s failed: %s", label, text)
            if isinstance(exc, ConnectionFailed):
                ctx.extra_details["availability"] = {"status": "down", "error": text}
            return TaskResult(status=RunStatus.FAILED, message=text, errors=[text])
        except (TaskError, WellkeptError) as exc:
            text = redact(str(exc))
            log.warning("%s failed: %s", label, text)
            return TaskResult(status=RunStatus.FAILED, message=text, errors=[text])
        except Exception as exc:
            text = redact(f"{type(exc).__name__}: {exc}")
            log.error("%s crashed: %s", label, text, exc_info=True)
            return TaskResult(status=RunStatus.FAILED, message=f"unexpected error: {text}",
                              errors=[redact(traceback.format_exc())])
        level = logging.WARNING if result.status.is_failure else logging.INFO
        log.log(level, "%s %s: %s", label, result.status, redact(result.message))
        result.message = redact(result.message)
        result.errors = [redact(e) for e in result.errors]
        return result
