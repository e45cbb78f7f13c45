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
    force: bool = Field(False, description="SQLite: vacuum even when no threshold is reached")
    min_dead_tuples: int = Field(1000, ge=0, description=(
        "PostgreSQL: a table needs at least this many dead tuples…"))
    min_dead_percent: float = Field(10.0, ge=0, le=100, description=(
        "PostgreSQL: …making up at least this share of its rows"))
    freeze_age: int = Field(150_000_000, ge=0, description=(
        "PostgreSQL: vacuum (with FREEZE) any table whose relfrozenxid age passes this"))
    max_tables: int = Field(50, ge=1, description="PostgreSQL: at most this many, worst first")
    tables: list[str] = Field([], description=(
        "PostgreSQL: vacuum exactly these tables (schema.table) instead of choosing"))
    analyze: bool = Field(True, description="PostgreSQL: VACUUM (ANALYZE), refreshing statistics")
    full: bool = Field(False, description=(
        "PostgreSQL: VACUUM FULL (rewrites under an ACCESS EXCLUSIVE lock); needs `tables`"))


class Vacuum(Task):
    """Reclaim the space left by deleted rows, only where it is worth it.

    SQLite: runs VACUUM (outside any transaction) when free pages reach `min_free_percent` of
    the file, then checkpoints the WAL so the file really shrinks. VACUUM rewrites the whole
    file: it blocks other writers while it runs and needs free disk up to the file's size (in
    the database's folder and the temp folder); wellkept checks that space first and fails
    cleanly instead of filling the disk. Reports the bytes freed.

    PostgreSQL: VACUUM (ANALYZE) of the tables that need it: at least `min_dead_tuples` dead
    tuples making up `min_dead_percent` of the table, or a relfrozenxid age past `freeze_age`
    (those get FREEZE too), worst first, at most `max_tables`. `tables:` forces a list.
    Each table is its own statement, sent alone in autocommit: VACUUM takes a SHARE UPDATE
    EXCLUSIVE lock (reads and writes go on); waiting for it is bounded by the target's
    `lock_timeout`, and a table that cannot be locked in time makes the run a partial failure
    while the others are still done. VACUUM runs without statement_timeout, because a cancel
    would throw its work away. `full: true` (VACUUM FULL) rewrites each table under an ACCESS
    EXCLUSIVE lock and is allowed only with an explicit `tables:` list. A replica is skipped.

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

        return run_actions(ctx, actions, describe,
                           "nothing to vacuum: nothing passes the thresholds",
                           ("tables_processed", "bytes_freed"))
