"""The one data model every report format renders: a period's maintenance, section by section.

:func:`wellkept.reports.builder.build_report` fills it from the store; ``render`` turns it into
HTML, JSON or CSV. Sections are plain JSON-ready dicts and lists, so the JSON format is the
model itself, and the HTML and CSV formats cannot say anything the model does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from wellkept import __version__
from wellkept.history.periods import RunRow
from wellkept.records import iso_z

ReportType = Literal["daily", "weekly"]
ReportFormat = Literal["html", "json", "csv"]
REPORT_TYPES: tuple[ReportType, ...] = ("daily", "weekly")
REPORT_FORMATS: tuple[ReportFormat, ...] = ("html", "json", "csv")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def to_json(self) -> dict[str, Any]:
        return {"start": iso_z(self.start), "end": iso_z(self.end)}


@dataclass
class Series:
    """One line of a chart: points in time order."""

    name: str
    points: list[tuple[datetime, float]]


@dataclass
class Charts:
    """The dashboard's and the HTML report's four charts, as data."""

    durations: list[Series] = field(default_factory=list)      # seconds, per task
    #: the tasks with timed runs in the period (``durations`` shows at most MAX_LINES)
    duration_tasks: int = 0
    health_score: list[Series] = field(default_factory=list)   # 0-100
    database_size: list[Series] = field(default_factory=list)  # bytes, per target
    freed_per_day: list[dict[str, Any]] = field(default_factory=list)  # rows and bytes per day

    def to_json(self) -> dict[str, Any]:
        def lines(found: list[Series]) -> dict[str, list[list[Any]]]:
            return {s.name: [[iso_z(at), value] for at, value in s.points] for s in found}

        return {"durations_seconds": lines(self.durations),
                "health_score": lines(self.health_score),
                "database_size_bytes": lines(self.database_size),
                "freed_per_day": self.freed_per_day}


@dataclass
class Report:
    """A daily or weekly report."""

    type: ReportType
    generated_at: datetime
    timezone: str
    period: Period
    previous: Period
    summary: dict[str, Any]
    tasks: list[dict[str, Any]]
    freed: dict[str, Any]
    failures: list[dict[str, Any]]
    backups: list[dict[str, Any]]
    resources: dict[str, Any]
    advice: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    charts: Charts
    runs: list[RunRow]
    include_details: bool = True
    config: str | None = None

    @property
    def title(self) -> str:
        return f"wellkept {self.type} report"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "report_type": self.type, "generated_at": iso_z(self.generated_at),
            "timezone": self.timezone, "period": self.period.to_json(),
            "previous_period": self.previous.to_json(), "summary": self.summary,
            "tasks": self.tasks, "freed": self.freed, "failures": self.failures,
            "backups": self.backups, "resources": self.resources, "advice": self.advice,
            "schedules": self.schedules, "charts": self.charts.to_json(),
            "metadata": {"version": __version__, "config": self.config},
        }
        if self.include_details:
            out["runs"] = [r.to_json() for r in self.runs]
        return out
