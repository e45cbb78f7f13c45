"""After every run: rewrite the Prometheus textfile (``metrics.textfile``), atomically.

node_exporter's textfile collector reads the file at each scrape; it is written to a temporary
file beside it and renamed, so a scrape never sees half a file. A failure to write is logged as
a WARNING and never changes the run's outcome.
"""

from __future__ import annotations

import logging

from wellkept.middleware.base import Middleware, Next, Run
from wellkept.records import TaskResult
from wellkept.redact import redact

log = logging.getLogger("wellkept.metrics")


class MetricsMiddleware(Middleware):
    def handle(self, run: Run, call_next: Next) -> TaskResult:
        result = call_next(run)
        settings = run.ctx.settings
        if settings is not None and settings.metrics.textfile:
            from wellkept.metrics import write_textfile

            try:
                write_textfile(settings, run.ctx.store, settings.metrics.textfile,
                               run.ctx.registry)
            except Exception as exc:  # an unwritable folder must not fail the run
                log.warning("metrics textfile %s not written: %s", settings.metrics.textfile,
                            redact(f"{type(exc).__name__}: {exc}"))
        return result
