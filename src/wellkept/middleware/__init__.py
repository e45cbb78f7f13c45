"""Lifecycle concerns wrapped around every run, outermost first.

Each middleware's ``handle(run, call_next)`` may act before and after the rest of the chain.
The default chain is: metrics (the textfile after the run) -> alerts (evaluated on the stored
record) -> history (the row before and after) -> lease (heartbeat; stop the run if the lease is
lost) -> isolation (exceptions become a status) -> retry (transient errors, with backoff) ->
timeout -> target lock -> the task itself.
"""

from wellkept.middleware.alerts import AlertsMiddleware
from wellkept.middleware.base import Middleware, Run
from wellkept.middleware.history import HistoryMiddleware
from wellkept.middleware.isolation import IsolationMiddleware
from wellkept.middleware.lease import LeaseMiddleware
from wellkept.middleware.locking import LockingMiddleware
from wellkept.middleware.metrics import MetricsMiddleware
from wellkept.middleware.retry import RetryMiddleware
from wellkept.middleware.timeout import TimeoutMiddleware


def default_chain() -> list[Middleware]:
    return [MetricsMiddleware(), AlertsMiddleware(), HistoryMiddleware(), LeaseMiddleware(),
            IsolationMiddleware(), RetryMiddleware(), TimeoutMiddleware(), LockingMiddleware()]


__all__ = ["AlertsMiddleware", "HistoryMiddleware", "IsolationMiddleware", "LeaseMiddleware",
           "LockingMiddleware", "MetricsMiddleware", "Middleware", "RetryMiddleware", "Run",
           "TimeoutMiddleware", "default_chain"]
