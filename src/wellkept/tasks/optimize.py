"""optimize: rebuild fragmented tables to give their free space back."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import Optimizable
from wellkept.context import RunContext
from wellkept.fs.sizes import ByteSize
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import human_bytes, plural


class OptimizeParams(TaskParams):
    min_free_percent: float = Field(20.0, ge=0, le=100, description=(
        "rebuild a table when its free space (data_free) is at least this share of its size"))
    min_free_bytes: ByteSize = Field(64 * 1024 * 1024, ge=0, description=(
        "…and at least this many bytes (small tables are not worth a rebuild)"))
    max_tables: int = Field(10, ge=1, description="at most this many, most free space first")
    tables: list[str] = Field([], description="rebuild exactly these tables instead of choosing")
    local: bool = Field(False, description=(
        "NO_WRITE_TO_BINLOG: do not replicate the statement (replicas keep their own layout)"))


class Optimize(Task):
    """Rebuild the tables whose free space is worth giving back, one table at a time.

    MySQL/MariaDB: `OPTIMIZE TABLE` on each table whose `data_free` reaches both
    `min_free_bytes` and `min_free_percent` of its size (data + indexes + free), most free
    space first, at most `max_tables`. On InnoDB this is an online rebuild plus ANALYZE (the
    server answers "doing recreate + analyze instead", which is normal): reads and writes go on,
    but it takes brief metadata locks, bounded by the target's `lock_timeout` through
    `lock_wait_timeout`, and it needs free disk about the size of the table. It frees disk only
    with `innodb_file_per_table` (otherwise InnoDB tables are left out: their `data_free` is the
    shared tablespace's). A table that fails (a lock wait that timed out) makes the run a
    partial failure while the others are still done. Reports the bytes freed per table.

    A dry run lists the tables, their free space and the statements, and changes nothing.
    """

    kind = "optimize"
    Params = OptimizeParams
    requires = (Optimizable,)
    mutating = True
    default_timeout = timedelta(hours=4)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Optimizable)
        actions = ctx.connector.plan_optimize(self.params)

        def describe(m: Metrics, done: int) -> str:
            return (f"optimized {plural(done, 'table')}, freed "
                    f"{human_bytes(m.get('bytes_freed', 0))}")

        return run_actions(ctx, actions, describe,
                           "nothing to optimize: no table passes the thresholds",
                           ("tables_processed", "bytes_freed"))
