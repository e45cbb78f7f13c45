"""analyze: refresh the query planner's statistics where they are stale."""

from __future__ import annotations

from pydantic import Field

from wellkept.connector import Analyzable
from wellkept.context import RunContext
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import plural


class AnalyzeParams(TaskParams):
    analysis_limit: int = Field(400, ge=0, description=(
        "SQLite: rows sampled per index (PRAGMA analysis_limit; 0 = no limit)"))
    stale_percent: float = Field(20.0, ge=0, description=(
        "re-analyze a table when its row count moved this much since the last ANALYZE"))
    min_changes: int = Field(1000, ge=0, description=(
        "PostgreSQL: and at least this many rows changed (n_mod_since_analyze)"))
    max_tables: int = Field(100, ge=1, description=(
        "PostgreSQL, MySQL/MariaDB, DuckDB: at most this many, worst first"))
    tables: list[str] = Field([], description=(
        "PostgreSQL, MySQL/MariaDB, DuckDB: analyze exactly these tables (PostgreSQL: "
        "schema.table) instead of choosing"))
    exact_rows: int = Field(100_000, ge=0, description=(
        "SQLite: tables up to this many rows are analyzed in full (exact statistics); larger "
        "ones are sampled with analysis_limit"))


class Analyze(Task):
    """Refresh planner statistics for the tables whose statistics are missing or stale.

    SQLite: runs `ANALYZE` on every table never analyzed or whose row count moved more than
    `stale_percent` since its last ANALYZE, then `PRAGMA optimize` for anything else SQLite
    tracks. Tables up to `exact_rows` rows are analyzed in full, so their statistics (and the
    next staleness check) are exact; larger tables are sampled with `PRAGMA analysis_limit`,
    which bounds the cost per index but stores only an estimated row count, so for them a
    change must pass both `stale_percent` and 100% before they count as stale. ANALYZE
    takes a brief write lock per table.

    PostgreSQL: ANALYZE of the tables never analyzed, or whose rows changed since the last
    ANALYZE (n_mod_since_analyze) by at least `min_changes` and `stale_percent` of the live
    rows, most changed first, at most `max_tables`. ANALYZE takes a SHARE UPDATE EXCLUSIVE lock
    (reads and writes go on), bounded by the target's lock_timeout. A replica is skipped.

    MySQL/MariaDB: `ANALYZE TABLE` of each InnoDB table that has no persistent statistics yet
    or changed since they were computed (`information_schema.TABLES.UPDATE_TIME` at or after
    `mysql.innodb_table_stats.last_update`), oldest statistics first, at most `max_tables`;
    tables of other engines are always included (their ANALYZE does nothing when nothing
    changed). One statement per table, each bounded by `lock_wait_timeout` (the target's
    `lock_timeout`); a table that fails makes the run a partial failure.

    DuckDB: `VACUUM ANALYZE` of each table (at most `max_tables`), refreshing the distinct-value
    statistics the optimizer uses. It needs the file read-write: while another process holds
    it, the run ends `skipped` (the file is in use, which is normal).

    A dry run lists the tables, the evidence and the statements, and changes nothing.
    """

    kind = "analyze"
    Params = AnalyzeParams
    requires = (Analyzable,)
    mutating = True

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Analyzable)
        actions = ctx.connector.plan_analyze(self.params)

        def describe(m: Metrics, done: int) -> str:
            tables = int(m.get("tables_processed", 0))
            return f"analyzed {plural(tables, 'table')}"

        return run_actions(ctx, actions, describe, "statistics are fresh",
                           ("tables_processed",))
