"""vacuum: reclaim space left by deleted rows."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import Vacuumable
from wellkept.context import RunContext
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import human_bytes, plural


class VacuumParams(TaskParams):
    min_free_percent: float = Field(10.0, ge=0, le=100, description=(
        "SQLite: vacuum only when free pages make up at least this share of the file"))
    force: bool = Field(False, description="vacuum even when no threshold is reached")


class Vacuum(Task):
    """Reclaim the space left by deleted rows, only where it is worth it.

    SQLite: runs VACUUM (outside any transaction) when free pages reach `min_free_percent` of
    the file, then checkpoints the WAL so the file really shrinks. VACUUM rewrites the whole
    file: it blocks other writers while it runs and needs free disk up to the file's size (in
    the database's folder and the temp folder); wellkept checks that space first and fails
    cleanly instead of filling the disk. Reports the bytes freed.

    A dry run reports the free pages and the statement, and changes nothing.
    """

    kind = "vacuum"
    Params = VacuumParams
    requires = (Vacuumable,)
    mutating = True
    default_timeout = timedelta(hours=2)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Vacuumable)
        actions = ctx.connector.plan_vacuum(self.params)

        def describe(m: Metrics, done: int) -> str:
            freed = human_bytes(m.get("bytes_freed", 0))
            if "size_before" in m:
                return (f"vacuumed: {human_bytes(m['size_before'])} -> "
                        f"{human_bytes(m['size_after'])}, freed {freed}")
            return f"vacuumed {plural(done, 'object')}, freed {freed}"

        result = run_actions(ctx, actions, describe, "nothing to vacuum: free space is below "
                             "the threshold")
        result.metrics.setdefault("bytes_freed", 0)
        return result
