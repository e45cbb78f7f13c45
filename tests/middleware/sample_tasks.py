"""Task kinds that exist only for the engine tests: they crash, hang or sleep on purpose."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from wellkept.context import RunContext
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams


class SleepParams(TaskParams):
    seconds: float = Field(0.5, description="how long to hold the target")


class Boom(Task):
    """Raises an unexpected exception (a bug)."""

    kind = "boom"

    def run(self, ctx: RunContext) -> TaskResult:
        raise RuntimeError("kaboom in the task")


class Fine(Task):
    """Completes at once."""

    kind = "fine"

    def run(self, ctx: RunContext) -> TaskResult:
        return TaskResult(message="fine", metrics={"files_processed": 1})


class Sleepy(Task):
    """A mutating task that holds its target for a while, cooperatively cancellable."""

    kind = "sleepy"
    Params = SleepParams
    mutating = True

    def run(self, ctx: RunContext) -> TaskResult:
        p: Any = self.params
        ctx.sleep(p.seconds)
        return TaskResult(message=f"slept {p.seconds}s")


class Hang(Task):
    """Runs an SQLite query that never ends (only an interrupt stops it)."""

    kind = "hang"
    default_timeout = timedelta(seconds=1)

    def run(self, ctx: RunContext) -> TaskResult:
        conn = ctx.connector.conn  # type: ignore[attr-defined]
        with ctx.connector._errors():  # type: ignore[attr-defined]
            conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                         "SELECT max(x) FROM c").fetchone()
        return TaskResult(message="unreachable")


SAMPLE_TASKS = {name: f"tests.middleware.sample_tasks:{cls}" for name, cls in
                (("boom", "Boom"), ("fine", "Fine"), ("sleepy", "Sleepy"), ("hang", "Hang"))}
