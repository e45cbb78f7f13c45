"""checkpoint: write the write-ahead log back into the database file."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import Checkpointable
from wellkept.context import RunContext
from wellkept.fs.sizes import ByteSize
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import human_bytes


class CheckpointParams(TaskParams):
    min_wal_bytes: ByteSize = Field(1, ge=0, description=(
        "checkpoint only when the write-ahead log holds at least this many bytes"))
    force: bool = Field(False, description="checkpoint even when the log is (nearly) empty")


class Checkpoint(Task):
    """Write the write-ahead log back into the database file, and free the space it held.

    DuckDB: `FORCE CHECKPOINT` on versions where it waits for running transactions (1.4 and
    later), a plain `CHECKPOINT` on older ones, where FORCE would abort them. It runs when the
    `.wal` file beside the database holds at least `min_wal_bytes`. It needs the file
    read-write for the statement's duration: while another process (an ingest job) holds it,
    the run ends `skipped`, naming the holder's PID, and the next run does it. Reports the log's
    size before and after and the bytes freed.

    A dry run reports the log's size and the statement, and changes nothing.
    """

    kind = "checkpoint"
    Params = CheckpointParams
    requires = (Checkpointable,)
    mutating = True
    default_timeout = timedelta(minutes=30)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Checkpointable)
        actions = ctx.connector.plan_checkpoint(self.params)

        def describe(m: Metrics, done: int) -> str:
            return (f"checkpointed: write-ahead log {human_bytes(m.get('wal_bytes_before', 0))}"
                    f" -> {human_bytes(m.get('wal_bytes_after', 0))}, freed "
                    f"{human_bytes(m.get('bytes_freed', 0))}")

        return run_actions(ctx, actions, describe,
                           "nothing to checkpoint: the write-ahead log is empty",
                           ("bytes_freed",))
