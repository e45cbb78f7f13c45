"""Scheduler and recovery families (CONTRACT §5) — what this store can tell today.

Where the data comes from:

- ``wellkept_task_missed_runs_total{schedule}``: the coordinator (issue 6) records missed fire
  times in its own tables; until they are wired in here the family is declared with no samples.
- ``wellkept_task_recoveries_total{task,strategy}``: runs started by recovery (``trigger =
  recovery`` in ``wk_runs``); the strategy comes from the run's ``details.recovery.strategy``
  once the recovery module writes it, and is ``unknown`` until then.
- ``wellkept_scheduler_last_tick_timestamp_seconds``: the newest ``updated_at`` in
  ``wk_schedule_state``, which only the scheduler writes; no sample while it has never run.
- ``wellkept_recovery_queue_depth``: runs still ``running`` whose lease has expired, i.e. the
  orphans waiting for recovery.

This is the one function to change when the coordinator's tables are merged.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wellkept.history.schema import runs, schedule_state
from wellkept.metrics.collector import Source
from wellkept.metrics.runs import _unix


def scheduler_families(src: Source) -> Iterable[Metric]:
    yield CounterMetricFamily("wellkept_task_missed_runs",
                              "Fire times each schedule missed (the coordinator was down or "
                              "busy past the grace period)", labels=["schedule"])
    recoveries = CounterMetricFamily("wellkept_task_recoveries",
                                     "Runs of each task started to recover interrupted work",
                                     labels=["task", "strategy"])
    counts: dict[tuple[str, str], int] = {}
    for task, details in src.conn.execute(sa.select(runs.c.task, runs.c.details)
                                          .where(runs.c.trigger == "recovery")):
        recovery = (details or {}).get("recovery")
        strategy = str(recovery.get("strategy", "unknown")) if isinstance(recovery, dict) \
            else "unknown"
        counts[(task, strategy)] = counts.get((task, strategy), 0) + 1
    for (task, strategy), count in sorted(counts.items()):
        recoveries.add_metric([task, strategy], count)
    yield recoveries
    tick = GaugeMetricFamily("wellkept_scheduler_last_tick_timestamp_seconds",
                             "When the scheduler last updated a schedule's state (Unix time)")
    last = src.conn.execute(sa.select(sa.func.max(schedule_state.c.updated_at))).scalar()
    if last is not None:
        tick.add_metric([], _unix(last))
    yield tick
    depth = GaugeMetricFamily("wellkept_recovery_queue_depth",
                              "Interrupted runs (expired lease) waiting for recovery")
    depth.add_metric([], src.conn.execute(
        sa.select(sa.func.count()).where(runs.c.status == "running",
                                         runs.c.lease_until.is_not(None),
                                         runs.c.lease_until < src.now)).scalar() or 0)
    yield depth
