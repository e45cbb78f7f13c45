"""Runs of a period, as light rows: what the reports, the dashboard's charts and the API's
per-task figures read.

A row carries what the figures need (times, status, metrics, the message and errors) and not a
run's ``details`` (statements, plans, health reports), which can be large; the few figures that
live in details (the host's, in health runs) are read by :func:`health_points` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wellkept.history.health_figures import HEALTH_KIND
from wellkept.history.schema import runs
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z
from wellkept.types import RunStatus

_COLUMNS = (runs.c.run_id, runs.c.task, runs.c.kind, runs.c.target, runs.c.status,
            runs.c.trigger, runs.c.dry_run, runs.c.started_at, runs.c.finished_at,
            runs.c.duration_seconds, runs.c.message, runs.c.metrics, runs.c.errors)


@dataclass(frozen=True)
class RunRow:
    """One finished (or running) run, without its details."""

    run_id: str
    task: str
    kind: str
    target: str
    status: str
    trigger: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return RunStatus(self.status).is_failure

    def figure(self, name: str) -> float:
        value = self.metrics.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "task": self.task, "kind": self.kind,
                "target": self.target, "status": self.status, "trigger": self.trigger,
                "dry_run": self.dry_run, "started_at": iso_z(self.started_at),
                "finished_at": iso_z(self.finished_at),
                "duration_seconds": self.duration_seconds, "message": self.message,
                "metrics": dict(self.metrics), "errors": list(self.errors)}


def period_runs(store: HistoryStore, since: datetime, until: datetime, *,
                task: str | None = None, kinds: tuple[str, ...] = (),
                dry_run: bool | None = False) -> list[RunRow]:
    """Runs started in ``[since, until)``, oldest first. ``dry_run``: False (the default)
    leaves dry runs out, True keeps only them, None keeps both."""
    query = sa.select(*_COLUMNS).where(runs.c.started_at >= since, runs.c.started_at < until) \
        .order_by(runs.c.started_at, runs.c.run_id)
    if task:
        query = query.where(runs.c.task == task)
    if kinds:
        query = query.where(runs.c.kind.in_(kinds))
    if dry_run is not None:
        query = query.where(runs.c.dry_run.is_(dry_run))
    with store.engine.connect() as conn:
        return [RunRow(**{**dict(r), "dry_run": bool(r["dry_run"]),
                          "message": r["message"] or "", "metrics": r["metrics"] or {},
                          "errors": r["errors"] or []})
                for r in conn.execute(query).mappings()]


@dataclass(frozen=True)
class HealthPoint:
    """One health check: when, its score and status, and the host's figures."""

    at: datetime
    score: float | None
    status: str | None
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None
    targets: dict[str, str]


def health_points(store: HistoryStore, since: datetime, until: datetime,
                  limit: int = 5000) -> list[HealthPoint]:
    """The health checks of ``[since, until)``, oldest first (at most ``limit``, newest
    kept), each with the host's figures from its report."""
    query = sa.select(runs.c.started_at, runs.c.finished_at, runs.c.details).where(
        runs.c.kind == HEALTH_KIND, runs.c.started_at >= since, runs.c.started_at < until,
        runs.c.dry_run.is_(False),
        runs.c.status.in_((str(RunStatus.COMPLETED), str(RunStatus.PARTIAL_FAILURE)))) \
        .order_by(runs.c.started_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        found = conn.execute(query).all()
    points = []
    for started, finished, details in reversed(found):
        report: dict[str, Any] = details if isinstance(details, dict) else {}
        host: dict[str, Any] = report["host"] if isinstance(report.get("host"), dict) else {}
        disks = [d.get("percent") for d in host.get("disk") or [] if isinstance(d, dict)]
        disk = max((float(d) for d in disks if isinstance(d, int | float)), default=None)
        targets: dict[str, Any] = report["targets"] \
            if isinstance(report.get("targets"), dict) else {}
        points.append(HealthPoint(
            at=finished or started, score=_number(report.get("score")),
            status=report.get("status") if isinstance(report.get("status"), str) else None,
            cpu_percent=_number(host.get("cpu_percent")),
            memory_percent=_number(host.get("memory_percent")), disk_percent=disk,
            targets={n: str(t.get("status")) for n, t in targets.items()
                     if isinstance(t, dict)}))
    return points


def latest_by_target(store: HistoryStore, kind: str, *, limit: int = 100
                     ) -> dict[str, dict[str, Any]]:
    """The newest finished, real run of ``kind`` on each target, with its details."""
    newest = sa.select(runs.c.target, sa.func.max(runs.c.started_at).label("at")).where(
        runs.c.kind == kind, runs.c.dry_run.is_(False),
        runs.c.status != str(RunStatus.RUNNING)).group_by(runs.c.target).subquery()
    query = sa.select(runs.c.run_id, runs.c.target, runs.c.status, runs.c.started_at,
                      runs.c.finished_at, runs.c.message, runs.c.details).join(
        newest, sa.and_(runs.c.target == newest.c.target, runs.c.started_at == newest.c.at),
    ).where(runs.c.kind == kind).order_by(runs.c.target).limit(limit)
    with store.engine.connect() as conn:
        return {r["target"]: dict(r) for r in conn.execute(query).mappings()}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
