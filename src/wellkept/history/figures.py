"""Figures over the store, for metrics, alerts, ``wellkept status`` and the API.

Plain functions of the store: the Prometheus collector (CONTRACT §5) maps them onto

======================================================  =========================================
``wellkept_task_missed_runs_total{schedule}``           :func:`missed_slot_counts`
``wellkept_task_recoveries_total{task,strategy}``       :func:`recovery_counts`
``wellkept_scheduler_last_tick_timestamp_seconds``      :func:`scheduler_last_tick`
``wellkept_recovery_queue_depth``                       :func:`recovery_queue_depth`
======================================================  =========================================

The totals count the records still in the store, so they drop when old records are pruned
(``recovery.retention``); Prometheus reads such a drop as a counter reset. Missed-slot alerts
read :func:`missed_slots` (each with its cause). :func:`recovery_health` gives seed 004's
recovery health and metrics shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.config_coordinator import RecoverySettings
from wellkept.history import coordination, schedules
from wellkept.history.schema import recovery_attempts, recovery_queue, runs, schedule_slots
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z
from wellkept.scheduler import SlotOutcome
from wellkept.types import RunStatus

DAY = timedelta(hours=24)


def missed_slot_counts(store: HistoryStore) -> dict[str, int]:
    """Missed slots per schedule (a row standing for several counts them all)."""
    query = sa.select(schedule_slots.c.schedule, sa.func.sum(schedule_slots.c.covers)) \
        .where(schedule_slots.c.outcome == str(SlotOutcome.MISSED)) \
        .group_by(schedule_slots.c.schedule)
    with store.engine.connect() as conn:
        return {name: int(total or 0) for name, total in conn.execute(query)}


def missed_slots(store: HistoryStore, *, since: datetime | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """Missed and skipped slots, newest first, each with its cause and detail."""
    rows = schedules.list_slots(store, since=since, limit=limit, outcomes=(
        str(SlotOutcome.MISSED), str(SlotOutcome.SKIPPED)))
    return [{"schedule": r["schedule"], "slot_at": iso_z(r["slot_at"]), "outcome": r["outcome"],
             "cause": r["cause"], "detail": r["detail"], "covers": r["covers"]} for r in rows]


def recovery_counts(store: HistoryStore) -> dict[tuple[str, str], int]:
    """Recovery attempts per (task, strategy); ``dead`` counts runs given up, ``deferred``
    recoveries that could not start yet (their target busy or down)."""
    query = sa.select(recovery_attempts.c.task, recovery_attempts.c.strategy, sa.func.count()) \
        .group_by(recovery_attempts.c.task, recovery_attempts.c.strategy)
    with store.engine.connect() as conn:
        return {(task, strategy): int(n) for task, strategy, n in conn.execute(query)}


def scheduler_last_tick(store: HistoryStore) -> datetime | None:
    """When a coordinator's scheduler last ticked (any coordinator)."""
    return coordination.last_tick(store)


def recovery_queue_depth(store: HistoryStore) -> int:
    """Interrupted runs waiting in the recovery queue (claimed or not)."""
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(recovery_queue))
                   .scalar_one())


def recovery_health(store: HistoryStore, policy: RecoverySettings,
                    now: datetime | None = None) -> dict[str, Any]:
    """Seed 004's ``/health/recovery`` and ``/health/recovery/metrics`` figures in one
    document: ``{"health": {...}, "metrics": {...}}``."""
    now = now or datetime.now(UTC)
    since = now - DAY
    with store.engine.connect() as conn:
        running = conn.execute(sa.select(runs.c.lease_until, runs.c.heartbeat_at,
                                         runs.c.started_at, runs.c.deadline_at)
                               .where(runs.c.status == str(RunStatus.RUNNING))).all()
        distribution = {s: int(n) for s, n in conn.execute(
            sa.select(runs.c.status, sa.func.count()).where(
                sa.or_(runs.c.started_at >= since, runs.c.status == str(RunStatus.RUNNING)))
            .group_by(runs.c.status))}
        orphan_queue = int(conn.execute(sa.select(sa.func.count()).select_from(recovery_queue)
                                        .where(recovery_queue.c.reason == "orphaned"))
                           .scalar_one())
        attempts = conn.execute(sa.select(
            recovery_attempts.c.outcome, recovery_attempts.c.started_at,
            recovery_attempts.c.finished_at, recovery_attempts.c.interrupted_at).where(
            recovery_attempts.c.started_at >= since,
            recovery_attempts.c.strategy.not_in(["dead", "deferred"]))).all()
    expired = stuck = 0
    for lease_until, heartbeat_at, started_at, deadline_at in running:
        lease_until, heartbeat_at, started_at, deadline_at = (
            _aware(lease_until), _aware(heartbeat_at), _aware(started_at), _aware(deadline_at))
        gone = (lease_until < now if lease_until else
                (heartbeat_at or started_at) + policy.lease < now)
        if gone:
            expired += 1
        elif deadline_at is not None and deadline_at + policy.stuck_grace < now:
            stuck += 1
    finished = [a for a in attempts if a.finished_at is not None]
    good = [a for a in finished if a.outcome == str(RunStatus.COMPLETED)]
    times = [(_aware(a.finished_at) - _aware(a.interrupted_at or a.started_at)).total_seconds()
             for a in good]
    failures = sum(n for s, n in distribution.items() if RunStatus(s).is_failure)
    rate = round(100.0 * len(good) / len(finished), 1) if finished else None
    depth = recovery_queue_depth(store)
    health = {
        "overall_health": _overall(depth, orphan_queue + expired, stuck, rate, distribution),
        "recovery_queue_depth": depth,
        "recent_failure_count": failures,
        "orphaned_task_count": orphan_queue + expired,
        "stuck_task_count": stuck,
        "timestamp": iso_z(now),
    }
    metrics = {
        "task_state_distribution": distribution,
        "recovery_success_rate_24h": rate,
        "total_recovery_attempts_24h": len(attempts),
        "successful_recoveries_24h": len(good),
        "average_recovery_time_seconds": round(sum(times) / len(times), 3) if times else None,
    }
    return {"health": health, "metrics": metrics}


def _overall(depth: int, orphaned: int, stuck: int, rate: float | None,
             distribution: dict[str, int]) -> str:
    """unhealthy: a run is stuck, a run went dead in 24h, or under half the recoveries
    succeeded; degraded: work waits for recovery, or under 90% succeeded; else healthy."""
    if stuck or distribution.get(str(RunStatus.DEAD)) or (rate is not None and rate < 50):
        return "unhealthy"
    if depth or orphaned or (rate is not None and rate < 90):
        return "degraded"
    return "healthy"


def _aware(value: datetime | None) -> Any:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
