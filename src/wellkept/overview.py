"""What the dashboards show, as data: the web page (``/maintenance/dashboard``) and the
terminal view (``wellkept dashboard``) render the same document.

Everything is read from the store, so it is the same whichever process asks and whether or not
a coordinator runs: the newest health check (targets and host), the runs in progress with their
progress and last checkpoint, recent results with the failures apart, the alerts firing, the
schedules with their next fire time, and the charts' data over the last ``days`` days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from wellkept.records import iso_z
from wellkept.types import RunStatus

if TYPE_CHECKING:
    from wellkept.engine import Engine
    from wellkept.reports.model import Charts

RECENT = 15
FAILURES_WINDOW = timedelta(hours=24)
FAILURE_STATUSES = tuple(str(s) for s in RunStatus if s.is_failure)


def overview(engine: Engine, *, days: int = 7, now: datetime | None = None,
             with_charts: bool = True) -> dict[str, Any]:
    from wellkept.alerts import AlertCenter
    from wellkept.history.health_figures import latest_report
    from wellkept.status import coordinator_state, running_runs, schedule_rows

    now = now or datetime.now(UTC)
    store = engine.store
    found = latest_report(store)
    recent = [r.to_json() for r in store.list_runs(limit=RECENT)]
    # the failures of the whole window, however many runs came after them
    since = now - FAILURES_WINDOW
    failures = [r.to_json() for r in store.list_runs(limit=RECENT, since=since,
                                                     statuses=FAILURE_STATUSES)]
    failure_count = store.count_runs(since=since, statuses=FAILURE_STATUSES) \
        if len(failures) == RECENT else len(failures)
    out: dict[str, Any] = {
        "generated_at": iso_z(now),
        "timezone": engine.settings.timezone,
        "health": found.report if found else None,
        "health_at": iso_z(found.taken_at) if found else None,
        "health_age_seconds": round((now - found.taken_at).total_seconds(), 1)
        if found else None,
        "running": with_checkpoints(engine, running_runs(engine)),
        "recent": recent,
        "failures": failures,
        "failures_24h": failure_count,
        "alerts": AlertCenter(engine.settings.alerts, store).firing(),
        "schedules": schedule_rows(engine, now),
        "coordinator": coordinator_state(engine, now),
        "recovery": engine.recovery_health()["health"],
    }
    if with_charts:
        out["charts"] = charts(engine, days=days, now=now)
    return out


def with_checkpoints(engine: Engine, running: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each running run with its newest checkpoint (name, percent, when)."""
    from wellkept.history.schema import checkpoints

    if not running:
        return running
    ids = [r["run_id"] for r in running]
    newest = sa.select(checkpoints.c.run_id, sa.func.max(checkpoints.c.id).label("id")) \
        .where(checkpoints.c.run_id.in_(ids)).group_by(checkpoints.c.run_id).subquery()
    query = sa.select(checkpoints.c.run_id, checkpoints.c.name, checkpoints.c.percent,
                      checkpoints.c.created_at).join(newest, checkpoints.c.id == newest.c.id)
    with engine.store.engine.connect() as conn:
        found = {r["run_id"]: r for r in conn.execute(query).mappings()}
    out = []
    for run in running:
        cp = found.get(run["run_id"])
        out.append({**run, "checkpoint": {"name": cp["name"], "percent": cp["percent"],
                                          "at": iso_z(cp["created_at"])} if cp else None})
    return out


def charts(engine: Engine, *, days: int, now: datetime) -> Charts:
    from wellkept.history.periods import health_points, period_runs
    from wellkept.reports.charts import build_charts

    since = now - timedelta(days=days)
    rows = period_runs(engine.store, since, now)
    points = health_points(engine.store, since, now)
    return build_charts(rows, points, since, now, engine.settings.timezone)
