"""Lifecycle concerns wrapped around every run, outermost first.

Each middleware's ``handle(run, call_next)`` may act before and after the rest of the chain.
The default chain is: history (the row before and after) -> lease (heartbeat; stop the run if
the lease is lost) -> isolation (exceptions become a status) -> retry (transient errors, with
backoff) -> timeout -> target lock -> the task itself.
"""

from wellkept.middleware.base import Middleware, Run
from wellkept.middleware.history import HistoryMiddleware
from wellkept.middleware.isolation import IsolationMiddleware
from wellkept.middleware.lease import LeaseMiddleware
from wellkept.middleware.locking import LockingMiddleware
from wellkept.middleware.retry import RetryMiddleware
from wellkept.middleware.timeout import TimeoutMiddleware


def default_chain() -> list[Middleware]:
    return [HistoryMiddleware(), LeaseMiddleware(), IsolationMiddleware(), RetryMiddleware(),
            TimeoutMiddleware(), LockingMiddleware()]


__all__ = ["HistoryMiddleware", "IsolationMiddleware", "LeaseMiddleware", "LockingMiddleware",
           "Middleware", "RetryMiddleware", "Run", "TimeoutMiddleware", "default_chain"]
