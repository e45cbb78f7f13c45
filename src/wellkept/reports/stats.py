"""Figures over a period's runs: per task (counts, success rate, durations), totals, per day.

Pure functions of :class:`~wellkept.history.periods.RunRow` lists, shared by the reports, the
dashboard and ``GET /maintenance/metrics``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wellkept.history.periods import RunRow
from wellkept.records import iso_z

#: counters summed into the totals (CONTRACT §3's common names)
FREED = ("rows_deleted", "rows_archived", "bytes_freed", "keys_deleted", "files_processed",
         "bytes_written")
STATUSES = ("completed", "partial_failure", "failed", "skipped")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def success_rate(rows: Iterable[RunRow]) -> float | None:
    """Percent of the runs that were not skipped (nor still running) that completed."""
    counted = [r for r in rows if r.status not in ("skipped", "running")]
    if not counted:
        return None
    return round(100.0 * sum(r.status == "completed" for r in counted) / len(counted), 1)


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def task_figures(rows: Sequence[RunRow]) -> list[dict[str, Any]]:
    """One entry per task, by name: counts by status, success rate, durations, freed."""
    by_task: dict[str, list[RunRow]] = defaultdict(list)
    for row in rows:
        by_task[row.task].append(row)
    out = []
    for task in sorted(by_task):
        mine = by_task[task]
        durations = [r.duration_seconds for r in mine if r.duration_seconds is not None
                     and r.status != "skipped"]
        last = max(mine, key=lambda r: r.started_at)
        counts = {s: sum(r.status == s for r in mine) for s in STATUSES}
        counts["failed"] += sum(r.status in ("orphaned", "dead") for r in mine)
        out.append({
            "task": task, "runs": len(mine), **counts, "success_rate": success_rate(mine),
            "duration_mean_seconds": _rounded(sum(durations) / len(durations))
            if durations else None,
            "duration_p50_seconds": _rounded(percentile(durations, 0.5)),
            "duration_p95_seconds": _rounded(percentile(durations, 0.95)),
            "duration_max_seconds": _rounded(max(durations, default=None)),
            "rows_deleted": sum(r.figure("rows_deleted") for r in mine),
            "bytes_freed": sum(r.figure("bytes_freed") for r in mine),
            "last_run_at": iso_z(last.started_at), "last_status": last.status,
        })
    return out


def totals(rows: Iterable[RunRow]) -> dict[str, float]:
    """The freed and written counters summed over the runs."""
    out = dict.fromkeys(FREED, 0.0)
    for row in rows:
        for name in FREED:
            out[name] += row.figure(name)
    return out


def status_counts(rows: Sequence[RunRow]) -> dict[str, int]:
    counts = {s: 0 for s in (*STATUSES, "orphaned", "dead", "running")}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def trend(current: float | None, previous: float | None) -> float | None:
    """The change from ``previous`` to ``current`` in percent (None when either is missing
    or the previous is zero)."""
    if current is None or previous is None or previous == 0:
        return None
    return round(100.0 * (current - previous) / previous, 1)


def per_day(rows: Iterable[RunRow], names: Sequence[str], since: datetime, until: datetime,
            timezone: str) -> list[dict[str, Any]]:
    """Each day of ``[since, until)`` in ``timezone`` with the counters ``names`` summed
    (days without runs are zeros, so a chart shows the gaps)."""
    zone = ZoneInfo(timezone)
    first, last = since.astimezone(zone).date(), (until - timedelta(microseconds=1)) \
        .astimezone(zone).date()
    days: dict[date, dict[str, float]] = {}
    day = first
    while day <= last:
        days[day] = dict.fromkeys(names, 0.0)
        day += timedelta(days=1)
    for row in rows:
        key = row.started_at.astimezone(zone).date()
        if key in days:
            for name in names:
                days[key][name] += row.figure(name)
    return [{"day": d.isoformat(), **v} for d, v in days.items()]
