"""The four charts' data, from a period's runs: the dashboard and the HTML report draw the same.

- run durations over time, one line per task (the tasks that took the most time in all, so
  a chart stays legible and the slow task is never the one left out);
- the health score over time (the ``health`` runs);
- database size growth, one line per target (``size_bytes`` of the ``stats`` runs);
- rows deleted and bytes freed per day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from wellkept.history.periods import HealthPoint, RunRow
from wellkept.reports.model import Charts, Series
from wellkept.reports.stats import per_day

#: lines per chart at most, and points per line (the newest are kept)
MAX_LINES = 8
MAX_POINTS = 500


def build_charts(rows: Sequence[RunRow], health: Sequence[HealthPoint], since: datetime,
                 until: datetime, timezone: str) -> Charts:
    durations, tasks = duration_series(rows)
    return Charts(durations=durations, duration_tasks=tasks, health_score=score_series(health),
                  database_size=size_series(rows),
                  freed_per_day=per_day(rows, ("rows_deleted", "bytes_freed"), since, until,
                                        timezone))


def duration_series(rows: Sequence[RunRow]) -> tuple[list[Series], int]:
    """One line per task, for the MAX_LINES tasks with the most time in all, and how many
    tasks had timed runs."""
    total: dict[str, float] = defaultdict(float)
    lines: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for row in rows:
        if row.duration_seconds is not None and row.status != "skipped":
            total[row.task] += float(row.duration_seconds)
            lines[row.task].append((row.started_at, float(row.duration_seconds)))
    shown = sorted(sorted(total), key=lambda task: -total[task])[:MAX_LINES]
    return [Series(task, lines[task][-MAX_POINTS:]) for task in sorted(shown)], len(total)


def score_series(points: Sequence[HealthPoint]) -> list[Series]:
    found = [(p.at, p.score) for p in points if p.score is not None]
    return [Series("health score", [(at, float(s)) for at, s in found][-MAX_POINTS:])] \
        if found else []


def size_series(rows: Sequence[RunRow]) -> list[Series]:
    lines: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for row in rows:
        if row.kind == "stats" and row.status in ("completed", "partial_failure") \
                and "size_bytes" in row.metrics:
            lines[row.target].append((row.finished_at or row.started_at,
                                      row.figure("size_bytes")))
    names = sorted(lines)[:MAX_LINES]
    return [Series(name, lines[name][-MAX_POINTS:]) for name in names]
