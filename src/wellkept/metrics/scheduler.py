"""Scheduler and recovery families (CONTRACT §5), from the coordinator's figures.

- ``wellkept_task_missed_runs_total{schedule}``: slots recorded ``missed`` (past their grace,
  or while no coordinator ran), a coalesced row counting every slot it stands for;
- ``wellkept_task_recoveries_total{task,strategy}``: recovery attempts by strategy (resume,
  restart, validate, and ``dead`` for runs given up, ``deferred`` for those that could not
  start yet);
- ``wellkept_scheduler_last_tick_timestamp_seconds``: the last tick of any coordinator's
  scheduler (no sample while none has ever run): alert when ``time() -`` it grows;
- ``wellkept_recovery_queue_depth``: interrupted runs waiting in the recovery queue.

The totals count the records still in the store, so they drop when ``recovery.retention``
prunes old ones, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wellkept.history import figures
from wellkept.metrics.collector import Source
from wellkept.metrics.runs import _unix


def scheduler_families(src: Source) -> Iterable[Metric]:
    missed = CounterMetricFamily("wellkept_task_missed_runs",
                                 "Fire times each schedule missed (no coordinator ran, or it "
                                 "was busy past the grace period)", labels=["schedule"])
    for schedule, count in sorted(figures.missed_slot_counts(src.store).items()):
        missed.add_metric([schedule], count)
    yield missed
    recoveries = CounterMetricFamily("wellkept_task_recoveries",
                                     "Recovery attempts of interrupted runs, by strategy",
                                     labels=["task", "strategy"])
    for (task, strategy), count in sorted(figures.recovery_counts(src.store).items()):
        recoveries.add_metric([task, strategy], count)
    yield recoveries
    tick = GaugeMetricFamily("wellkept_scheduler_last_tick_timestamp_seconds",
                             "When a coordinator's scheduler last ticked (Unix time)")
    last = figures.scheduler_last_tick(src.store)
    if last is not None:
        tick.add_metric([], _unix(last))
    yield tick
    depth = GaugeMetricFamily("wellkept_recovery_queue_depth",
                              "Interrupted runs waiting in the recovery queue")
    depth.add_metric([], figures.recovery_queue_depth(src.store))
    yield depth
