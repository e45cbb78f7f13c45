"""Run families: counts, durations, last success, running now, rows deleted, bytes freed."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from wellkept.history.schema import runs
from wellkept.metrics.collector import Source

#: duration buckets: a health check (well under a second) up to a day-long backup
BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
FINISHED = runs.c.status != "running"


def task_families(src: Source) -> Iterable[Metric]:
    conn = src.conn
    total = CounterMetricFamily("wellkept_task_runs", "Finished runs of each task",
                                labels=["task", "kind", "target", "status", "trigger"])
    for row in conn.execute(sa.select(runs.c.task, runs.c.kind, runs.c.target, runs.c.status,
                                      runs.c.trigger, sa.func.count())
                            .where(FINISHED).group_by(runs.c.task, runs.c.kind, runs.c.target,
                                                      runs.c.status, runs.c.trigger)):
        total.add_metric([str(v) for v in row[:5]], row[5])
    yield total

    duration = HistogramMetricFamily("wellkept_task_duration_seconds",
                                     "How long finished runs took", labels=["task"])
    cols = [sa.func.sum(sa.case((runs.c.duration_seconds <= b, 1), else_=0)) for b in BUCKETS]
    for row in conn.execute(sa.select(runs.c.task, sa.func.count(),
                                      sa.func.sum(runs.c.duration_seconds), *cols)
                            .where(FINISHED, runs.c.duration_seconds.is_not(None))
                            .group_by(runs.c.task)):
        task, count, seconds, *cumulative = row
        buckets = [(repr(float(b)), int(c or 0)) for b, c in zip(BUCKETS, cumulative,
                                                                 strict=True)]
        duration.add_metric([task], [*buckets, ("+Inf", int(count))], float(seconds or 0))
    yield duration

    last = GaugeMetricFamily("wellkept_task_last_success_timestamp_seconds",
                             "When each task last completed on each target (Unix time)",
                             labels=["task", "target"])
    for task, target, finished in conn.execute(
            sa.select(runs.c.task, runs.c.target, sa.func.max(runs.c.finished_at))
            .where(runs.c.status == "completed", runs.c.dry_run.is_(False))
            .group_by(runs.c.task, runs.c.target)):
        if finished is not None:
            last.add_metric([task, target], _unix(finished))
    yield last

    running = GaugeMetricFamily("wellkept_task_running", "Runs of each task in progress now",
                                labels=["task"])
    now_running: dict[str, int] = {task: count for task, count in conn.execute(
        sa.select(runs.c.task, sa.func.count()).where(runs.c.status == "running")
        .group_by(runs.c.task))}
    for task in sorted(set(src.settings.tasks) | set(now_running)):
        running.add_metric([task], now_running.get(task, 0))
    yield running

    for column, name, text in (
            ("rows_deleted", "wellkept_rows_deleted", "Rows deleted by each task"),
            ("bytes_freed", "wellkept_bytes_freed", "Bytes freed by each task")):
        family = CounterMetricFamily(name, text, labels=["task", "target"])
        amount = sa.func.sum(runs.c.metrics[column].as_float())
        for task, target, value in conn.execute(
                sa.select(runs.c.task, runs.c.target, amount)
                .where(FINISHED, runs.c.dry_run.is_(False)).group_by(runs.c.task, runs.c.target)
                .having(amount.is_not(None))):
            family.add_metric([task, target], float(value))
        yield family


def _unix(moment: object) -> float:
    from datetime import UTC, datetime

    assert isinstance(moment, datetime)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp()
