"""A report rendered: HTML (Jinja2, the dashboard's charts, print styles), JSON, CSV.

The CSV has one row per run of the period, with the common counters as columns; the JSON is
the report model itself; the HTML reads the same model. Jinja2 is imported here only, so
``wellkept --help`` never pays for it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from wellkept.reports.model import Report, ReportFormat
from wellkept.units import human_bytes

if TYPE_CHECKING:
    from jinja2 import Environment

CSV_COLUMNS = ("run_id", "started_at", "finished_at", "task", "kind", "target", "status",
               "trigger", "duration_seconds", "rows_matched", "rows_deleted", "rows_archived",
               "bytes_freed", "bytes_written", "keys_deleted", "files_processed", "message",
               "errors")
MEDIA_TYPES: dict[str, str] = {"html": "text/html; charset=utf-8",
                               "json": "application/json", "csv": "text/csv; charset=utf-8"}


def render(report: Report, fmt: ReportFormat) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r}; choose html, json or csv")


def filename(report: Report, fmt: ReportFormat) -> str:
    day = report.period.end.astimezone(ZoneInfo(report.timezone)).strftime("%Y-%m-%d")
    return f"wellkept-{report.type}-{day}.{fmt}"


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, default=str) + "\n"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in report.runs:
        row = run.to_json()
        metrics = row["metrics"]
        writer.writerow([
            *(row[k] for k in ("run_id", "started_at", "finished_at", "task", "kind", "target",
                               "status", "trigger")),
            "" if row["duration_seconds"] is None else round(row["duration_seconds"], 3),
            *(_count(metrics.get(k)) for k in CSV_COLUMNS[9:16]),
            row["message"], " | ".join(row["errors"])])
    return out.getvalue()


def _count(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return "" if value is None else value


def to_text(report: Report) -> str:
    """A plain-text digest (the body of a mailed report; the HTML part has the rest)."""
    data = report.to_json()
    s, freed = data["summary"], data["freed"]["current"]
    tz = report.timezone
    lines = [f"{report.title}: {when_text(data['period']['start'], tz)} to "
             f"{when_text(data['period']['end'], tz)} ({tz})", "",
             f"runs: {s['runs']} (before: {s['previous_runs']}), success rate "
             f"{percent_text(s['success_rate'])} (before: "
             f"{percent_text(s['previous_success_rate'])}), failures: {s['failures']}",
             f"rows deleted: {number_text(freed['rows_deleted'])}, bytes freed: "
             f"{human_bytes(freed['bytes_freed'])}"]
    if data["failures"]:
        lines += ["", "failures:"]
        lines += [f"  {f['started_at']} {f['status']} {f['task']} on {f['target']}: "
                  f"{f['message']}" for f in data["failures"][:20]]
    stale = [b for b in data["backups"] if not b["fresh"]]
    if data["backups"]:
        lines += ["", f"backups: {len(data['backups']) - len(stale)} of "
                      f"{len(data['backups'])} targets within their RPO"]
        lines += [f"  {b['target']}: {b['reason']}" for b in stale]
    advice = sum(len(a["recommendations"]) for a in data["advice"])
    if advice:
        lines += ["", f"recommendations: {advice} (see the HTML report)"]
    return "\n".join(lines) + "\n"


def to_html(report: Report) -> str:
    from wellkept.reports.svg import dashboard_charts

    template = environment().get_template("report.html")
    return template.render(report=report, data=report.to_json(),
                           charts=dashboard_charts(report.charts, report.timezone))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates of reports and the dashboard, with the filters they share."""
    from wellkept.connectors._drivers import require

    require("jinja2", "web", "An HTML report")  # JSON and CSV reports need nothing more
    from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

    env = Environment(loader=ChoiceLoader([PackageLoader("wellkept", "reports/templates"),
                                           PackageLoader("wellkept", "api/templates")]),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(bytes=lambda v: "-" if v is None else human_bytes(float(v)),
                       seconds=seconds_text, percent=percent_text, trend=trend_text,
                       when=when_text, number=number_text, target_detail=target_detail)
    return env


def target_detail(target: Any) -> str:
    """What the dashboards say of a target: its error, why it is degraded, or its version."""
    details = target.get("details") or {}
    return str(target.get("error") or details.get("degraded") or details.get("version") or "")


def seconds_text(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value < 60:
        return f"{value:.2f}s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def percent_text(value: Any) -> str:
    # one decimal at most: a run's progress is rows done over rows estimated (0.815835%)
    return "-" if value is None else f"{round(float(value), 1):g}%"


def trend_text(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    return f"{arrow} {value:+g}%"


def number_text(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"


def when_text(value: Any, timezone: str = "UTC") -> str:
    """An ISO timestamp (or datetime) shown in the config's timezone."""
    if not value:
        return "-"
    moment = value if isinstance(value, datetime) else \
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
