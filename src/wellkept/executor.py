"""Where runs execute: the seam between the coordinator and the engine.

The coordinator decides *what* runs and when (slots, requests, emergencies, recoveries); an
executor decides *where*. ``inline`` runs each request in the calling thread, through the
engine, in this process. ``celery`` sends it to a Celery worker and waits for its record in
the shared store (:mod:`wellkept.executors.celery`). Either way the run goes through the same
engine and middleware, so it is recorded, leased, locked and recoverable the same way; the
executor is chosen by ``executor.kind``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wellkept.engine import Engine, RunRequest
    from wellkept.records import RunRecord
    from wellkept.types import Trigger


class Executor(Protocol):
    """Runs requests somewhere and hands back their records."""

    kind: str

    def start(self) -> None:
        """Check that runs can be executed (a broker answers); raise a WellkeptError with the
        reason when they cannot, before any work is taken."""

    def run(self, request: RunRequest, *, trigger: Trigger,
            dry_run: bool = False) -> RunRecord:
        """Execute one run and return its record once it ended. A record still ``running``
        means the executor stopped waiting (``close``): the run goes on elsewhere, and the
        store will have its outcome."""

    def upkeep(self, now: datetime) -> None:
        """Periodic care, called by the scheduling leader with each recovery pass."""

    def close(self) -> None:
        """Stop waiting for runs (a shutdown)."""

    def snapshot(self) -> dict[str, Any]:
        """What the executor is doing, for status."""


def make_executor(engine: Engine) -> Executor:
    """The executor ``executor.kind`` names; Celery is imported only when chosen."""
    if engine.settings.executor.kind == "celery":
        from wellkept.executors.celery import CeleryExecutor

        return CeleryExecutor(engine)
    from wellkept.executors.inline import InlineExecutor

    return InlineExecutor(engine)
