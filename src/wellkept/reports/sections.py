"""The report's sections that read beyond the period's runs: backups and their RPO, the
current advice, the schedules' missed slots, database sizes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wellkept.history.periods import RunRow, latest_by_target
from wellkept.records import iso_z
from wellkept.reports.stats import trend

if TYPE_CHECKING:
    from wellkept.history.store import HistoryStore
    from wellkept.reports.builder import ReportSource
    from wellkept.reports.model import Period

def backups(engine: ReportSource, period: Period, now: datetime) -> list[dict[str, Any]]:
    """Per target with backups (or a backup task): the newest backup and its verification,
    the recovery point (the newest verified backup's age) against the RPO, and what the
    period made. The RPO is the smallest of the target's ``backup_freshness`` tasks."""
    from wellkept.backups import catalog
    from wellkept.backups.freshness import DEFAULT_RPO, DEFAULT_TIER, freshness

    settings = engine.settings
    rpos: dict[str, list[tuple[timedelta, str]]] = defaultdict(list)
    targets: set[str] = set()
    for task in settings.tasks.values():
        names = [task.target] if task.target else list(task.targets)
        if task.kind == "backup":
            targets.update(names)
        elif task.kind == "backup_freshness":
            params: Any = task.params
            for name in names:
                rpos[name].append((params.rpo, params.tier))
    entries = catalog.entries(engine.store)
    targets.update(e.manifest.target for e in entries)
    out = []
    for target in sorted(targets):
        rpo, tier = min(rpos.get(target) or [(DEFAULT_RPO, DEFAULT_TIER)])
        found = freshness(engine.store, target, rpo, now, tier=tier)
        mine = [e for e in entries if e.manifest.target == target]
        made = [e for e in mine if period.start <= e.manifest.created < period.end]
        newest = found.newest
        out.append({
            "target": target, "fresh": found.fresh, "reason": found.reason,
            "rpo_seconds": rpo.total_seconds(), "tier": tier,
            "recovery_point_age_seconds": round(found.age.total_seconds(), 1)
            if found.age is not None else None,
            "newest": newest.to_json() if newest else None,
            "newest_verified_id": found.newest_verified.id if found.newest_verified else None,
            "made_in_period": len(made),
            "verified_in_period": sum(e.verified for e in made),
            "failed_verification_in_period": sum(e.verify_status == "failed" for e in made),
            "stored_bytes_in_period": sum(e.manifest.stored_bytes for e in made),
        })
    return out


def advice(store: HistoryStore) -> list[dict[str, Any]]:
    """The newest ``advise`` run of each target: its recommendations, and when it ran."""
    out = []
    for target, run in latest_by_target(store, "advise").items():
        details = run["details"] if isinstance(run["details"], dict) else {}
        items = [a for a in details.get("advice") or [] if isinstance(a, dict)]
        out.append({"target": target, "run_id": run["run_id"], "status": run["status"],
                    "at": iso_z(run["finished_at"] or run["started_at"]),
                    "message": run["message"] or "",
                    "recommendations": [
                        {k: a.get(k) for k in ("id", "severity", "object", "reason",
                                               "statement", "applicable")} for a in items]})
    return out


def schedules(store: HistoryStore, period: Period) -> list[dict[str, Any]]:
    """Per schedule: the slots of the period by outcome, and the causes of those missed."""
    from wellkept.history.schedules import list_slots

    found: dict[str, dict[str, Any]] = {}
    for slot in list_slots(store, since=period.start, limit=100_000):
        if slot["slot_at"] >= period.end:
            continue
        row = found.setdefault(slot["schedule"], {"schedule": slot["schedule"], "ran": 0,
                                                  "missed": 0, "skipped": 0, "causes": {}})
        outcome = slot["outcome"] if slot["outcome"] in ("missed", "skipped") else "ran"
        row[outcome] += slot["covers"] if outcome != "ran" else 1
        if outcome != "ran" and slot["cause"]:
            row["causes"][slot["cause"]] = row["causes"].get(slot["cause"], 0) + slot["covers"]
    return [found[k] for k in sorted(found)]


def sizes(rows: list[RunRow], before: list[RunRow]) -> list[dict[str, Any]]:
    """Per target with ``stats`` runs: its size at the start and the end of the period, the
    growth, and the growth of the period before."""
    def span(found: list[RunRow]) -> dict[str, tuple[float, float]]:
        seen: dict[str, list[float]] = defaultdict(list)
        for row in found:
            if row.kind == "stats" and "size_bytes" in row.metrics \
                    and row.status in ("completed", "partial_failure"):
                seen[row.target].append(row.figure("size_bytes"))
        return {t: (v[0], v[-1]) for t, v in seen.items()}

    now, then = span(rows), span(before)
    out = []
    for target in sorted(now):
        first, last = now[target]
        growth = last - first
        old = then.get(target)
        old_growth = old[1] - old[0] if old else None
        out.append({"target": target, "first_bytes": first, "last_bytes": last,
                    "growth_bytes": growth, "previous_growth_bytes": old_growth,
                    "growth_trend_percent": trend(growth, old_growth)})
    return out
