"""Charts as inline SVG, drawn on the server: no script, no library, no CDN; they print.

The dashboard and the HTML report embed the same markup. Each chart has a ``<title>`` (for
screen readers), axis labels with the unit, and a legend; a chart without data says so. Colours
come from a CSS class per line (``wk-s0``…), so a page may restyle them, with a stroke given
inline too, so an SVG saved on its own still draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from wellkept.reports.model import Series
from wellkept.units import human_bytes

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 28, 40
LEGEND_ROW = 14
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
           "#4b5563")
Format = Callable[[float], str]


def fmt_seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def fmt_bytes(value: float) -> str:
    return human_bytes(value)


def fmt_number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.3g}"


def _ticks(top: float, count: int = 4) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def _frame(title: str, body: list[str], legend: list[str], rows: int = 1) -> str:
    height = HEIGHT + LEGEND_ROW * (rows - 1)
    return (f'<svg class="wk-chart" role="img" viewBox="0 0 {WIDTH} {height}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
            f"<title>{escape(title)}</title>"
            f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
            + "".join(body) + "".join(legend) + "</svg>")


def _empty(title: str, why: str) -> str:
    return _frame(title, [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                          f'fill="#6b7280">{escape(why)}</text>'], [])


def _axes(top: float, fmt: Format, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    inner_h = HEIGHT - TOP - BOTTOM
    out = []
    for tick in _ticks(top):
        y = TOP + inner_h - (tick / top * inner_h if top else 0)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#e5e7eb"/><text x="{LEFT - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end" fill="#374151">{escape(fmt(tick))}</text>')
    for x, label in x_labels:
        # the first and last labels sit inside the frame, not centred past its edges
        anchor = "start" if x <= LEFT else "end" if x >= WIDTH - RIGHT - 1 else "middle"
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}" '
                   f'fill="#374151">{escape(label)}</text>')
    return out


def _legend(names: Sequence[str]) -> tuple[list[str], int]:
    """The legend's markup, wrapped into rows that fit the width, and how many rows."""
    out, x, row = [], float(LEFT), 0
    for i, name in enumerate(names):
        wide = 24 + 6.5 * len(name)
        if x + wide > WIDTH - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        y = HEIGHT - 5 + row * LEGEND_ROW
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.0f}" y="{y - 9}" width="10" height="10" '
                   f'fill="{colour}" class="wk-s{i % len(PALETTE)}"/>'
                   f'<text x="{x + 14:.0f}" y="{y}">{escape(name)}</text>')
        x += wide
    return out, row + 1


def line_chart(title: str, series: Sequence[Series], fmt: Format = fmt_number, *,
               y_max: float | None = None, timezone: str = "UTC") -> str:
    """Lines over time, one per series, on one shared time axis (labelled in ``timezone``)."""
    zone = ZoneInfo(timezone)
    points = [p for s in series for p in s.points]
    if not points:
        return _empty(title, "no data in this period")
    t0 = min(at for at, _ in points).timestamp()
    t1 = max(at for at, _ in points).timestamp()
    span = (t1 - t0) or 1.0
    top = y_max if y_max is not None else (max(v for _, v in points) * 1.1 or 1.0)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(at: datetime, value: float) -> tuple[float, float]:
        return (LEFT + (at.timestamp() - t0) / span * inner_w,
                TOP + inner_h - min(value, top) / top * inner_h)

    labels = [(LEFT + f * inner_w, datetime.fromtimestamp(t0 + f * span, zone).strftime(
        "%m-%d %H:%M")) for f in (0.0, 0.5, 1.0)] if t1 > t0 else \
        [(LEFT + inner_w / 2, datetime.fromtimestamp(t0, zone).strftime("%m-%d %H:%M"))]
    body = _axes(top, fmt, labels)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        coords = [xy(at, v) for at, v in s.points]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(f'<polyline class="wk-s{i % len(PALETTE)}" fill="none" '
                        f'stroke="{colour}" stroke-width="1.8" points="{path}"/>')
        if len(coords) <= 60:
            body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                     f"<title>{escape(s.name)}: {escape(fmt(v))}</title></circle>"
                     for (x, y), (_, v) in zip(coords, s.points, strict=True)]
    legend, rows = _legend([s.name for s in series])
    return _frame(title, body, legend, rows)


def bar_chart(title: str, days: Sequence[dict[str, Any]], key: str,
              fmt: Format = fmt_number) -> str:
    """One bar per day of ``days`` (``{"day": "2026-11-22", key: value}``)."""
    if not days or not any(d.get(key) for d in days):
        return _empty(title, "nothing in this period")
    top = max(float(d.get(key) or 0) for d in days) * 1.1 or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / len(days)
    every = max(1, len(days) // 8)
    labels = [(LEFT + slot * (i + 0.5), d["day"][5:]) for i, d in enumerate(days)
              if i % every == 0]
    body = _axes(top, fmt, labels)
    for i, d in enumerate(days):
        value = float(d.get(key) or 0)
        h = value / top * inner_h
        body.append(f'<rect class="wk-s0" x="{LEFT + slot * i + slot * 0.15:.1f}" '
                    f'y="{TOP + inner_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[0]}"><title>{escape(d["day"])}: {escape(fmt(value))}'
                    "</title></rect>")
    return _frame(title, body, [])


def dashboard_charts(charts: Any, timezone: str = "UTC") -> dict[str, str]:
    """The four charts of a :class:`~wellkept.reports.model.Charts`, as SVG markup (the
    freed space per day as two bar charts, rows and bytes)."""
    return {
        "durations": line_chart(_durations_title(charts), charts.durations, fmt_seconds,
                                timezone=timezone),
        "health_score": line_chart("Health score", charts.health_score, fmt_number,
                                   y_max=100.0, timezone=timezone),
        "database_size": line_chart("Database size", charts.database_size, fmt_bytes,
                                    timezone=timezone),
        "rows_freed": bar_chart("Rows deleted per day", charts.freed_per_day, "rows_deleted"),
        "bytes_freed": bar_chart("Bytes freed per day", charts.freed_per_day, "bytes_freed",
                                 fmt_bytes),
    }


def _durations_title(charts: Any) -> str:
    shown, tasks = len(charts.durations), getattr(charts, "duration_tasks", 0)
    if tasks > shown:
        return f"Run durations per task (the {shown} of {tasks} tasks with the most time)"
    return "Run durations per task"
