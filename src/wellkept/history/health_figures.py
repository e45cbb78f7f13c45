"""The latest health figures: the newest completed ``health`` run, flattened for conditions.

The ``health`` task records a run of kind ``health`` whose ``details`` follow CONTRACT §3's
health JSON (``status``, ``score``, ``host.cpu_percent``, ``host.memory_percent``,
``host.disk[].path/.percent``, ``targets.<name>.status``, ``alerts[]``). Emergency triggers
read it through :func:`latest_health`, flattened to the names of ``conditions.FIGURES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wellkept.history.schema import runs
from wellkept.history.store import HistoryStore

HEALTH_KIND = "health"
_COUNTED_STATUSES = ("completed", "partial_failure")


@dataclass(frozen=True)
class HealthFigures:
    run_id: str
    taken_at: datetime
    figures: dict[str, float]


@dataclass(frozen=True)
class HealthReport:
    """The newest health run's report (CONTRACT §3's health JSON) and when it was taken."""

    run_id: str
    taken_at: datetime
    report: dict[str, Any]


def latest_report(store: HistoryStore) -> HealthReport | None:
    """The newest finished health run that produced figures (completed or partial), or None."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(runs.c.run_id, runs.c.finished_at, runs.c.started_at, runs.c.details)
            .where(runs.c.kind == HEALTH_KIND, runs.c.status.in_(_COUNTED_STATUSES),
                   runs.c.dry_run.is_(False))
            .order_by(runs.c.started_at.desc()).limit(1)).first()
    if row is None:
        return None
    return HealthReport(run_id=row.run_id, taken_at=row.finished_at or row.started_at,
                        report=row.details if isinstance(row.details, dict) else {})


def latest_health(store: HistoryStore) -> HealthFigures | None:
    """The newest health run's figures, flattened for conditions, or None."""
    found = latest_report(store)
    if found is None:
        return None
    return HealthFigures(run_id=found.run_id, taken_at=found.taken_at,
                         figures=flatten(found.report))


def flatten(details: dict[str, Any]) -> dict[str, float]:
    """CONTRACT §3's health document as ``{figure name: number}``."""
    out: dict[str, float] = {}
    host = _mapping(details.get("host"))
    for name in ("cpu_percent", "memory_percent"):
        _put(out, name, host.get(name))
    disks = _sequence(host.get("disk"))
    worst: float | None = None
    for disk in disks:
        if not isinstance(disk, dict) or not _is_number(disk.get("percent")):
            continue
        percent = float(disk["percent"])
        if disk.get("path"):
            out[f"disk_percent[{disk['path']}]"] = percent
        worst = percent if worst is None else max(worst, percent)
    if worst is not None:
        out["disk_percent"] = worst
    _put(out, "health_score", details.get("score"))
    targets = _mapping(details.get("targets"))
    down = 0
    for name, target in targets.items():
        if not isinstance(target, dict):
            continue
        is_down = target.get("status") == "down"
        down += int(is_down)
        out[f"target_up[{name}]"] = 0.0 if is_down else 1.0
    if targets:
        out["targets_down"] = float(down)
    alerts = _sequence(details.get("alerts"))
    for severity in ("critical", "warning"):
        out[f"alerts_{severity}"] = float(sum(1 for a in alerts if isinstance(a, dict)
                                              and a.get("severity") == severity))
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _put(out: dict[str, float], name: str, value: Any) -> None:
    if _is_number(value):
        out[name] = float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
