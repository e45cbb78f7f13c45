"""reindex: rebuild bloated indexes without blocking writes."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import Reindexable
from wellkept.context import RunContext
from wellkept.fs.sizes import ByteSize
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import human_bytes, plural


class ReindexParams(TaskParams):
    min_bloat_percent: float = Field(30.0, ge=0, le=100, description=(
        "rebuild indexes whose estimated bloat is at least this share of their size"))
    min_bytes: ByteSize = Field(10 * 1024 * 1024, ge=0, description=(
        "…and whose estimated wasted space is at least this many bytes (small gains are not "
        "worth a rebuild)"))
    max_indexes: int = Field(20, ge=1, description="at most this many, worst first")
    indexes: list[str] = Field([], description=(
        "rebuild exactly these indexes (schema.index) instead of choosing"))
    catalog_timeout_ms: int = Field(10000, ge=100, description=(
        "statement_timeout of the bloat estimate query"))


class Reindex(Task):
    """Rebuild the indexes whose estimated bloat passes a threshold, without blocking writes.

    PostgreSQL, in the spirit of Ola Hallengren's IndexOptimize: btree indexes whose
    statistical bloat estimate is at least `min_bloat_percent` of their size and at least
    `min_bytes` bytes are rebuilt with REINDEX INDEX CONCURRENTLY, one statement each, worst
    first. Reads and writes go on; the rebuild needs a SHARE UPDATE EXCLUSIVE lock (bounded by
    the target's lock_timeout) and briefly stronger ones at the swap, and disk for a second copy
    of the index. It runs without statement_timeout, since a cancel leaves an invalid copy.

    Before rebuilding, it drops the invalid `_ccnew`/`_ccold` leftovers of earlier failed
    concurrent rebuilds (DROP INDEX CONCURRENTLY) — but never one that a CREATE or REINDEX
    CONCURRENTLY running right now owns (pg_stat_progress_create_index). A REINDEX that fails
    is not retried in the same run (a retry would leave a second leftover); the next run drops
    what it left. Indexes of exclusion constraints cannot be rebuilt concurrently: they are
    never chosen, and listing one in `indexes:` fails the run. A replica is skipped.

    A dry run lists the indexes, the estimates and the statements, and changes nothing.
    """

    kind = "reindex"
    Params = ReindexParams
    requires = (Reindexable,)
    mutating = True
    default_timeout = timedelta(hours=4)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Reindexable)
        actions = ctx.connector.plan_reindex(self.params)

        def describe(m: Metrics, done: int) -> str:
            return (f"processed {plural(m.get('indexes_processed', 0), 'index', 'indexes')}, "
                    f"freed {human_bytes(m.get('bytes_freed', 0))}")

        return run_actions(ctx, actions, describe, "no index is bloated past the thresholds",
                           ("indexes_processed", "bytes_freed"))
