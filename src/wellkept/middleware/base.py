"""The middleware protocol and the run being carried through the chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from wellkept.records import RunRecord, TaskResult

if TYPE_CHECKING:
    from wellkept.context import RunContext
    from wellkept.recovery.spec import RecoverySpec
    from wellkept.task import Task

Next = Callable[["Run"], TaskResult]


@dataclass
class Run:
    """One run in flight: the task, its context and its limits."""

    task: Task
    ctx: RunContext
    started_at: datetime
    timeout: timedelta
    lock_wait: timedelta
    schedule: str | None = None
    #: how long the run's lease lasts between renewals (recovery.lease)
    lease: timedelta = timedelta(seconds=60)
    #: attempts after a transient error, and the first wait (doubled each time)
    retries: int = 0
    retry_backoff: timedelta = timedelta(seconds=30)
    priority: int = 0
    #: the slot a scheduled run is for
    scheduled_for: datetime | None = None
    #: set when this run recovers an interrupted one (the coordinator, `wellkept recover`)
    recovery: RecoverySpec | None = None
    #: what the task reported when Ctrl-C or SIGTERM interrupted it and it stopped in time
    #: (its committed work, for the record); None when it did not stop within the grace
    interrupted_result: TaskResult | None = None
    #: the record as the history middleware stored it
    record: RunRecord | None = None
    #: called with the final record once it is stored (recovery closes its attempt here)
    on_finish: list[Callable[[RunRecord], None]] = field(default_factory=list)


def interruption(exc: BaseException) -> str:
    """How a run stopped by Ctrl-C or SIGTERM says so: ``interrupted (KeyboardInterrupt)``,
    ``interrupted (SIGTERM)``."""
    from wellkept.errors import Terminated

    return f"interrupted ({'SIGTERM' if isinstance(exc, Terminated) else type(exc).__name__})"


class Middleware:
    """Does nothing by default; subclasses wrap ``call_next``."""

    def handle(self, run: Run, call_next: Next) -> TaskResult:
        return call_next(run)
