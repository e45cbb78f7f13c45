"""Build a report from the store: the period, the one before it for trends, every section.

A daily report covers the 24 hours before ``end`` (default: now), a weekly one the 7 days
before; the previous period is as long and ends where this one starts, so every trend compares
like with like. Dry runs are left out of the figures (they changed nothing) but counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from wellkept.history.periods import HealthPoint, RunRow, health_points, period_runs
from wellkept.records import iso_z
from wellkept.reports import sections
from wellkept.reports.charts import build_charts
from wellkept.reports.model import Period, Report, ReportType
from wellkept.reports.stats import status_counts, success_rate, task_figures, totals, trend

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore


class ReportSource(Protocol):
    """What a report is built from: the store and the config (an Engine, a run's context)."""

    @property
    def store(self) -> HistoryStore: ...

    @property
    def settings(self) -> Settings: ...

LENGTH: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
#: failures listed at most (the newest), and errors per failure
MAX_FAILURES = 200
MAX_ERRORS = 5


def build_report(engine: ReportSource, report_type: ReportType = "daily", *,
                 end: datetime | None = None, include_details: bool = True) -> Report:
    """The report of the period of ``report_type`` ending at ``end``."""
    if report_type not in LENGTH:
        raise ValueError(f"unknown report type {report_type!r}; choose daily or weekly")
    now = datetime.now(UTC)
    end = (end or now).astimezone(UTC)
    length = LENGTH[report_type]
    period, previous = Period(end - length, end), Period(end - 2 * length, end - length)
    store, settings = engine.store, engine.settings
    rows = period_runs(store, period.start, period.end)
    before = period_runs(store, previous.start, previous.end)
    dry = len(period_runs(store, period.start, period.end, dry_run=True))
    health = health_points(store, period.start, period.end)
    health_before = health_points(store, previous.start, previous.end)
    return Report(
        type=report_type, generated_at=now, timezone=settings.timezone, period=period,
        previous=previous, summary=_summary(rows, before, dry), tasks=_tasks(rows, before),
        freed={"current": totals(rows), "previous": totals(before)},
        failures=_failures(rows), backups=sections.backups(engine, period, now),
        resources=_resources(rows, before, health, health_before),
        advice=sections.advice(store), schedules=sections.schedules(store, period),
        charts=build_charts(rows, health, period.start, period.end, settings.timezone),
        runs=rows, include_details=include_details,
        config=str(settings.source) if settings.source else None)


def _summary(rows: list[RunRow], before: list[RunRow], dry_runs: int) -> dict[str, Any]:
    durations = [r.duration_seconds or 0.0 for r in rows]
    rate, rate_before = success_rate(rows), success_rate(before)
    return {"runs": len(rows), "by_status": status_counts(rows), "success_rate": rate,
            "previous_runs": len(before), "previous_success_rate": rate_before,
            "success_rate_change": None if rate is None or rate_before is None
            else round(rate - rate_before, 1),
            "failures": sum(r.failed for r in rows), "dry_runs": dry_runs,
            "tasks": len({r.task for r in rows}), "targets": len({r.target for r in rows}),
            "busy_seconds": round(sum(durations), 3)}


def _tasks(rows: list[RunRow], before: list[RunRow]) -> list[dict[str, Any]]:
    previous = {f["task"]: f for f in task_figures(before)}
    out = []
    for figures in task_figures(rows):
        old = previous.get(figures["task"], {})
        figures["previous_duration_mean_seconds"] = old.get("duration_mean_seconds")
        figures["duration_trend_percent"] = trend(figures["duration_mean_seconds"],
                                                  old.get("duration_mean_seconds"))
        figures["previous_success_rate"] = old.get("success_rate")
        out.append(figures)
    return out


def _failures(rows: list[RunRow]) -> list[dict[str, Any]]:
    failed = [r for r in rows if r.failed][-MAX_FAILURES:]
    return [{"run_id": r.run_id, "task": r.task, "target": r.target, "status": r.status,
             "trigger": r.trigger, "started_at": iso_z(r.started_at), "message": r.message,
             "errors": r.errors[:MAX_ERRORS]} for r in reversed(failed)]


def _resources(rows: list[RunRow], before: list[RunRow], health: list[HealthPoint],
               health_before: list[HealthPoint]) -> dict[str, Any]:
    return {"health_score": _figure(health, before_points=health_before, name="score"),
            "cpu_percent": _figure(health, before_points=health_before, name="cpu_percent"),
            "memory_percent": _figure(health, before_points=health_before,
                                      name="memory_percent"),
            "disk_percent": _figure(health, before_points=health_before, name="disk_percent"),
            "health_checks": len(health),
            "databases": sections.sizes(rows, before)}


def _figure(points: list[HealthPoint], *, before_points: list[HealthPoint],
            name: str) -> dict[str, Any]:
    values = [v for v in (getattr(p, name) for p in points) if v is not None]
    old = [v for v in (getattr(p, name) for p in before_points) if v is not None]
    mean = round(sum(values) / len(values), 2) if values else None
    old_mean = round(sum(old) / len(old), 2) if old else None
    return {"mean": mean, "min": min(values, default=None), "max": max(values, default=None),
            "last": values[-1] if values else None, "previous_mean": old_mean,
            "trend_percent": trend(mean, old_mean)}
