"""The middleware protocol and the run being carried through the chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from wellkept.records import RunRecord, TaskResult

if TYPE_CHECKING:
    from wellkept.context import RunContext
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
    #: the record as the history middleware stored it
    record: RunRecord | None = None


class Middleware:
    """Does nothing by default; subclasses wrap ``call_next``."""

    def handle(self, run: Run, call_next: Next) -> TaskResult:
        return call_next(run)
