"""index_health: invalid, unused and duplicate indexes, and slow-burning dangers."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from pydantic import Field

from wellkept.connector import IndexHealthChecker
from wellkept.context import RunContext
from wellkept.fs.sizes import ByteSize
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import checked_result
from wellkept.types import RunStatus
from wellkept.units import plural

LABELS = {
    "invalid_index": ("invalid index", "invalid indexes"),
    "duplicate_index": ("duplicate index", "duplicate indexes"),
    "unused_index": ("unused index", "unused indexes"),
    "sequence": ("sequence near exhaustion", "sequences near exhaustion"),
    "wraparound": ("database near wraparound", "databases near wraparound"),
    "idle_in_transaction": ("session idle in transaction", "sessions idle in transaction"),
}


class IndexHealthParams(TaskParams):
    unused_min_bytes: ByteSize = Field(1024 * 1024, ge=0, description=(
        "report unused indexes only from this size up"))
    sequence_percent: float = Field(85.0, ge=0, le=100, description=(
        "report sequences (or the int columns they feed) past this share of their range"))
    wraparound_percent: float = Field(50.0, ge=0, le=100, description=(
        "report databases whose transaction-ID age passed this share of the 2^31 limit"))
    idle_tx_seconds: float = Field(60.0, ge=0, description=(
        "report sessions idle in a transaction for longer than this"))
    catalog_timeout_ms: int = Field(5000, ge=100, description=(
        "statement_timeout of each check's query; a slow check fails alone"))


class IndexHealth(Task):
    """Find invalid, unused and duplicate indexes, exhausted sequences and wraparound danger.

    PostgreSQL, read-only, each check bounded and failing alone:
    invalid indexes (and whether they are leftovers of a failed concurrent build);
    unused indexes — never primary-key, unique or exclusion indexes, which enforce constraints
    even at zero scans, and with the age of the statistics (stats_reset) so that "unused since
    yesterday's restore" is not mistaken for "unused"; remember idx_scan is per server, so an
    index unused here may serve a replica;
    duplicate indexes (identical, or a column prefix of another valid index);
    sequences near exhaustion, including int columns fed by bigint sequences;
    transaction-ID wraparound age; sessions idle in a transaction.

    The run fails when a finding is critical (a sequence at 95%+, wraparound age at 75%+);
    otherwise it completes, with every finding in its details.
    """

    kind = "index_health"
    Params = IndexHealthParams
    requires = (IndexHealthChecker,)
    default_timeout = timedelta(minutes=10)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, IndexHealthChecker)
        report = ctx.connector.check_index_health(self.params)
        by_check = Counter(f.check for f in report.findings)
        metrics: Metrics = {"findings": len(report.findings), **by_check}
        details = {"findings": [f.__dict__ for f in report.findings], "checks": report.details}
        critical = [f for f in report.findings if f.severity == "critical"]
        summary = ", ".join(plural(n, LABELS.get(check, (check, check + "s"))[0],
                                   LABELS.get(check, (check, check + "s"))[1])
                            for check, n in by_check.items())
        message = f"{plural(len(report.findings), 'finding')}: {summary}" if report.findings \
            else "no findings"
        if critical:
            return TaskResult(status=RunStatus.FAILED,
                              message=f"critical: {critical[0].object} {critical[0].message}; "
                                      + message, metrics=metrics, details=details,
                              errors=[f"{f.object}: {f.message}" for f in critical])
        return checked_result(message, metrics, details, report.errors, "check")
