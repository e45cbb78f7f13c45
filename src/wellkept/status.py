"""The coordinator's state as data: ``wellkept status``, ``wellkept schedule list`` and the
API's ``/maintenance/status`` and ``/maintenance/schedule``.

Everything is read from the store, so it is the same whether or not a coordinator runs, and
whichever process asks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.durations import format_duration
from wellkept.engine import Engine
from wellkept.history import coordination, schedules
from wellkept.history.schema import runs
from wellkept.liveness import process_alive
from wellkept.records import iso_z
from wellkept.schedule import CronSpec
from wellkept.types import RunStatus


def coordinator_state(engine: Engine, now: datetime | None = None) -> dict[str, Any]:
    """Which coordinators are alive, which one leads, when the scheduler last ticked.

    A coordinator whose record is fresh but whose process is known to be gone (one of this
    host, killed: its record and lease look alive until ``leader_lease`` runs out) is not
    alive, so that ``schedule trigger`` runs here instead of queueing for nobody."""
    now = now or datetime.now(UTC)
    stale = engine.settings.coordinator.leader_lease
    rows = coordination.list_coordinators(engine.store)
    alive = [r for r in rows if r.alive(now, stale)
             and process_alive(r.host_id, r.pid, r.started_at) is not False]
    lease = coordination.get_lease(engine.store)
    leader = None
    if lease is not None and lease.lease_until >= now \
            and process_alive(lease.holder_host_id, lease.holder_pid,
                              lease.acquired_at) is not False:
        leader = {"id": lease.holder, "host": lease.holder_host, "pid": lease.holder_pid,
                  "since": iso_z(lease.acquired_at), "lease_until": iso_z(lease.lease_until)}
    return {"running": bool(alive), "leader": leader,
            "instances": [r.to_json() for r in alive],
            "last_seen": rows[0].to_json() if rows and not alive else None,
            "last_tick_at": iso_z(coordination.last_tick(engine.store))}


def running_runs(engine: Engine) -> list[dict[str, Any]]:
    cols = (runs.c.run_id, runs.c.task, runs.c.kind, runs.c.target, runs.c.trigger,
            runs.c.started_at, runs.c.host, runs.c.pid, runs.c.attempt, runs.c.schedule,
            runs.c.progress_percent, runs.c.progress_step, runs.c.progress_message,
            runs.c.heartbeat_at, runs.c.lease_until)
    with engine.store.engine.connect() as conn:
        found = conn.execute(sa.select(*cols).where(runs.c.status == str(RunStatus.RUNNING))
                             .order_by(runs.c.started_at)).mappings().all()
    return [{k: iso_z(v) if isinstance(v, datetime) else v for k, v in dict(r).items()}
            for r in found]


def last_results(engine: Engine) -> list[dict[str, Any]]:
    """The last finished run of every task (configured, or a kind run directly) on each target
    it ran on: a task with `targets: [a, b]` has a row for each, so that a failure on one is
    not hidden by a success on the other.

    The pairs come from the (task, target, started_at) index alone, then one short indexed
    lookup per pair, rather than a GROUP BY that reads every row: `GET /maintenance/status`
    is polled, and the history may hold many thousands of runs."""
    cols = (runs.c.task, runs.c.run_id, runs.c.status, runs.c.trigger, runs.c.started_at,
            runs.c.finished_at, runs.c.message, runs.c.target)
    out = []
    with engine.store.engine.connect() as conn:
        pairs = conn.execute(sa.select(runs.c.task, runs.c.target).distinct()
                             .order_by(runs.c.task, runs.c.target)).all()
        for task, target in pairs:
            row = conn.execute(sa.select(*cols).where(
                runs.c.task == task, runs.c.target == target,
                runs.c.status != str(RunStatus.RUNNING), runs.c.dry_run.is_(False))
                .order_by(runs.c.started_at.desc()).limit(1)).mappings().first()
            if row is not None:
                out.append({k: iso_z(v) if isinstance(v, datetime) else v
                            for k, v in dict(row).items()})
    return out


def schedule_rows(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every schedule with its state and next fire time."""
    now = now or datetime.now(UTC)
    settings = engine.settings
    state = schedules.states(engine.store)
    since = now - timedelta(hours=24)
    recent = schedules.list_slots(engine.store, since=since, limit=10_000)
    out = []
    for name, sched in settings.schedules.items():
        st = state.get(name)
        spec = settings.schedule_spec(name)
        mine = [s for s in recent if s["schedule"] == name]
        paused = bool(st and st.paused)
        out.append({
            "id": name, "cron": sched.cron, "explain": CronSpec(sched.cron).explain(),
            "timezone": spec.timezone, "window": sched.window,
            "grace": format_duration(sched.grace),
            "catch_up": sched.catch_up, "tasks": list(sched.tasks), "enabled": sched.enabled,
            "paused": paused, "paused_at": iso_z(st.paused_at) if st else None,
            "paused_by": st.paused_by if st else None,
            "next_fire_at": iso_z(spec.cron.next_after(now, spec.timezone))
            if sched.enabled else None,
            "last_fire_at": iso_z(st.last_fire_at) if st else None,
            "last_status": st.last_status if st else None,
            "missed_24h": sum(s["covers"] for s in mine if s["outcome"] == "missed"),
            "skipped_24h": sum(s["covers"] for s in mine if s["outcome"] == "skipped"),
        })
    return out


def status_report(engine: Engine, *, with_schedules: bool = False) -> dict[str, Any]:
    """``wellkept status --output json``."""
    now = datetime.now(UTC)
    report: dict[str, Any] = {
        "timestamp": iso_z(now),
        "coordinator": coordinator_state(engine, now),
        "running": running_runs(engine),
        "last_results": last_results(engine),
        "recovery": engine.recovery_health(),
    }
    if with_schedules:
        report["schedules"] = schedule_rows(engine, now)
    return report
