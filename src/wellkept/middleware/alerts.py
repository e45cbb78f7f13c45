"""After every run: evaluate its alerts (task failure, thresholds in its metrics, and every
target's backup freshness) and notify.

It sits outside the history middleware, so it sees the record as stored. Nothing it does can
change the run's outcome: the alert center logs its own failures and never raises.
"""

from __future__ import annotations

from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult


class AlertsMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        result = call_next(run)
        settings = run.ctx.settings
        if run.record is not None and settings is not None:
            from wellkept.alerts import AlertCenter

            # a task that judged backup freshness itself (the health check) is not followed by
            # a second look at the same catalog rows
            backups = None if run.task.judges_backup_freshness else settings
            AlertCenter(settings.alerts, run.ctx.store).evaluate_run(run.record,
                                                                     backups=backups)
        return result
