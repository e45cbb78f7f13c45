"""``manage.py maintenance`` output: its JSON document, and the text a person reads.

JSON is one object with a key per operation run, in order, and ``metadata``::

    {"sessions": {"status": "completed", "operation": "sessions",
                  "description": "Clean expired sessions",
                  "message": "deleted 12 rows older than 0s from django_session in 1 batch",
                  "rows_processed": 12, "rows_matched": 12, "rows_deleted": 12, …,
                  "errors": [], "details": {"sessions": {RUN's run_id, status, …}}},
     "metadata": {"timestamp": "…Z", "duration_seconds": 0.4, "dry_run": false,
                  "database": "app", "alias": "default", "engine": "postgresql",
                  "status": "completed", "summary": {"completed": 1, …},
                  "version": "0.1.0"}}

An operation's counters are the sums of its runs' metrics; ``rows_processed`` is the rows an
operation removed from the source table (archived rows are removed too).
``details`` has one entry per run, keyed by task name: each run as the history keeps it.
"""

from __future__ import annotations

from typing import Any

from wellkept import __version__
from wellkept.contrib.django.operations import OPERATIONS
from wellkept.contrib.django.runner import MaintenanceRun, OperationOutcome
from wellkept.records import RunRecord, iso_z

#: operations whose work is deleting rows (their JSON has ``rows_processed``)
ROW_OPERATIONS = ("cleanup", "logs", "sessions")


def to_json(run: MaintenanceRun) -> dict[str, Any]:
    out: dict[str, Any] = {o.operation: operation_json(o) for o in run.outcomes}
    counts = {s: 0 for s in ("completed", "partial_failure", "failed", "skipped")}
    for record in run.records:
        counts[str(record.status)] = counts.get(str(record.status), 0) + 1
    out["metadata"] = {
        "timestamp": iso_z(run.started_at),
        "duration_seconds": round(run.duration_seconds, 3),
        "dry_run": run.dry_run,
        "database": run.database.name,
        "alias": run.database.alias,
        "engine": run.database.vendor,
        "status": str(run.status),
        "summary": counts,
        "version": __version__,
    }
    return out


def operation_json(outcome: OperationOutcome) -> dict[str, Any]:
    totals: dict[str, float | int] = {}
    for record in outcome.records:
        for key, value in record.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    entry: dict[str, Any] = {
        "status": str(outcome.status),
        "operation": outcome.operation,
        "description": OPERATIONS[outcome.operation].label,
        "message": message(outcome),
    }
    if outcome.operation in ROW_OPERATIONS:
        entry["rows_processed"] = int(totals.get("rows_deleted", 0))
    entry.update({k: _number(v) for k, v in totals.items()})
    entry["errors"] = [f"{r.task}: {e}" if len(outcome.records) > 1 else e
                       for r in outcome.records for e in r.errors]
    entry["details"] = {r.task: r.to_json() for r in outcome.records}
    return entry


def message(outcome: OperationOutcome) -> str:
    if len(outcome.records) == 1:
        return outcome.records[0].message
    return "; ".join(f"{r.task}: {r.message}" for r in outcome.records)


def _number(value: float | int) -> float | int:
    return round(value, 6) if isinstance(value, float) else value


def record_line(operation: str, record: RunRecord) -> list[tuple[str, str]]:
    """One run as text: (style, line) pairs, the style naming one of Django's ``self.style``
    attributes (SUCCESS, WARNING, ERROR, or "" for none); a failure's errors follow it."""
    task = f" [{record.task}]" if record.task != operation else ""
    dry = " (dry run)" if record.dry_run else ""
    took = f" in {record.duration_seconds:.2f}s" if record.duration_seconds else ""
    lines = [(_style(str(record.status)),
              f"{operation:<9} {record.status}{dry}{task}{took}: {record.message}")]
    if record.status.is_failure:
        lines += [("ERROR", f"{'':<9} {e.strip().splitlines()[-1]}")
                  for e in record.errors if e.strip()]
    return lines


def summary_line(run: MaintenanceRun) -> tuple[str, str]:
    ops, failed = len(run.outcomes), len(run.failed)
    text = (f"{run.status}: {ops} operation{'s' if ops != 1 else ''} on database "
            f"{run.database.alias} ({run.database.vendor} {run.database.name}) in "
            f"{run.duration_seconds:.2f}s" + (f", {failed} failed" if failed else "")
            + (" - dry run: nothing was changed" if run.dry_run else ""))
    return _style(str(run.status)), text


def _style(status: str) -> str:
    return {"completed": "SUCCESS", "skipped": "WARNING", "partial_failure": "ERROR",
            "failed": "ERROR"}.get(status, "")
