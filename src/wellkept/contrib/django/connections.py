"""Django's connection hygiene in the long-running coordinator.

Django closes a request's broken or expired connections (``CONN_MAX_AGE``) when the request
starts and ends; a process that is not a web server has to do it itself, or a connection the
database dropped overnight fails the next query. wellkept's own maintenance never uses Django's
connections (its connectors open their own), but a plugin task may use the ORM, and the
coordinator's runs happen in worker threads that live as long as the process. So
``close_old_connections()`` is called before and after every run, in the run's thread, and
around every scheduler tick.

It is not used by ``manage.py maintenance``, which runs once and ends: there, closing
connections could end a caller's transaction (a test's, for one).
"""

from __future__ import annotations

from datetime import datetime

from wellkept.contrib.django.conf import DjangoConfig
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.middleware import Middleware, Run, default_chain
from wellkept.middleware.base import Next
from wellkept.records import TaskResult


class DjangoConnections(Middleware):
    """Outermost: the thread's stale Django connections are closed around each run."""

    def handle(self, run: Run, call_next: Next) -> TaskResult:
        from django.db import close_old_connections

        close_old_connections()
        try:
            return call_next(run)
        finally:
            close_old_connections()


class DjangoCoordinator(Coordinator):
    """The coordinator, with connection hygiene around each tick."""

    def tick(self) -> datetime:
        from django.db import close_old_connections

        close_old_connections()
        try:
            return super().tick()
        finally:
            close_old_connections()


def coordinator_engine(config: DjangoConfig) -> Engine:
    return Engine(config.settings, middleware=[DjangoConnections(), *default_chain()])
