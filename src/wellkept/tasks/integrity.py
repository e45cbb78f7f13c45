"""integrity: verify the database's on-disk structures."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from wellkept.connector import IntegrityCheckable
from wellkept.context import RunContext
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus


class IntegrityParams(TaskParams):
    mode: Literal["full", "quick"] = Field("full", description=(
        "full checks everything, indexes included; quick skips index contents (faster)"))
    max_errors: int = Field(100, ge=1, description="stop after this many problems")
    foreign_keys: bool = Field(True, description="also look for broken foreign keys")


class Integrity(Task):
    """Check that the database file is sound; a damaged one fails the run, naming the problem.

    SQLite: `PRAGMA integrity_check(N)` (or `quick_check(N)` with `mode: quick`, which skips
    the index contents) and `PRAGMA foreign_key_check`. Both read the whole file but change
    nothing and take only a read lock.

    MySQL/MariaDB: `CHECK TABLE … MEDIUM` (rows and index checksums; `QUICK` with `mode:
    quick`) on each table in turn, each bounded by `lock_wait_timeout`; an `error` answer or a
    status other than OK is a problem. `foreign_keys` does not apply (InnoDB enforces them).
    """

    kind = "integrity"
    Params = IntegrityParams
    requires = (IntegrityCheckable,)
    default_timeout = timedelta(hours=2)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, IntegrityCheckable)
        ctx.progress(0, "integrity", "checking the whole file")
        report = ctx.connector.check_integrity(self.params)
        for statement in report.checks:
            ctx.issued(statement)
        details = {"checks": report.checks, "problems": report.problems, **report.details}
        metrics: Metrics = {"problems": len(report.problems)}
        if report.problems:
            first = report.problems[0]
            more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
            return TaskResult(status=RunStatus.FAILED, message=f"integrity problem: {first}{more}",
                              metrics=metrics, details=details, errors=report.problems)
        checked = ", ".join(report.checks) if len(report.checks) <= 3 else \
            f"{report.checks[0]} and {len(report.checks) - 1} more"
        return TaskResult(message=f"no problems found ({checked or 'nothing to check'})",
                          metrics=metrics, details=details)
