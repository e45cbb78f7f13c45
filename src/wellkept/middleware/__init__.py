"""Lifecycle concerns wrapped around every run, outermost first.

Each middleware's ``handle(run, call_next)`` may act before and after the rest of the chain.
The default chain is: metrics (the textfile after the run) -> alerts (evaluated on the stored
record) -> history (the row before and after) -> isolation (exceptions become a status) ->
timeout -> target lock -> the task itself.
"""

from wellkept.middleware.alerts import AlertsMiddleware
from wellkept.middleware.base import Middleware, Run
from wellkept.middleware.history import HistoryMiddleware
from wellkept.middleware.isolation import IsolationMiddleware
from wellkept.middleware.locking import LockingMiddleware
from wellkept.middleware.metrics import MetricsMiddleware
from wellkept.middleware.timeout import TimeoutMiddleware


def default_chain() -> list[Middleware]:
    return [MetricsMiddleware(), AlertsMiddleware(), HistoryMiddleware(), IsolationMiddleware(),
            TimeoutMiddleware(), LockingMiddleware()]


__all__ = ["AlertsMiddleware", "HistoryMiddleware", "IsolationMiddleware", "LockingMiddleware",
           "MetricsMiddleware", "Middleware", "Run", "TimeoutMiddleware", "default_chain"]
