"""Check every target and the host at once and build CONTRACT §3's health report.

Each target runs ``Connector.health()`` in its own thread, bounded by the target's ``timeout``;
the host's figures are read meanwhile. The whole check takes as long as its slowest target,
and at most the largest timeout plus a quarter second. Nothing here raises: a target that
cannot be checked is ``down`` with the reason, and a bug in a connector is that target's error.

A target is ``up`` when it answers, ``locked`` when another process holds it (a DuckDB file an
ingest job writes: in use, so healthy), ``degraded`` when it answers but one of its figures is at
or past its warning threshold (or it says it cannot fully serve, e.g. Redis loading its data),
and ``down`` when it does not answer. The score and overall status are in ``health.score``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wellkept.alerts import rules
from wellkept.config import HOST_TARGET
from wellkept.health.score import overall_status, score
from wellkept.probe import SLACK_SECONDS, ping_target, run_bounded
from wellkept.records import iso_z, utcnow

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore
    from wellkept.registry import Registry


def check_health(settings: Settings, registry: Registry, *, store: HistoryStore | None = None,
                 targets: list[str] | None = None,
                 disks: list[str] | None = None) -> dict[str, Any]:
    """The health report; with ``store``, alerts are evaluated and kept, and each target's
    change of state is logged once (see ``health.transitions``)."""
    from wellkept.connectors.host import HostConnector

    started = utcnow()
    names = [n for n in (targets if targets else sorted(settings.targets)) if n != HOST_TARGET]
    host_timeout = settings.targets[HOST_TARGET].timeout.total_seconds() + SLACK_SECONDS
    paths = list(disks if disks is not None else settings.health.disks)
    jobs: dict[str, tuple[Callable[[], Any], float]] = {
        f"target:{n}": (lambda n=n: ping_target(n, settings, registry, health=True),  # type: ignore[misc]
                        settings.targets[n].timeout.total_seconds() + SLACK_SECONDS)
        for n in names}
    jobs["host"] = (lambda: HostConnector.figures(paths), host_timeout)

    def timed_out(job: str, limit: float) -> dict[str, Any]:
        if job == "host":
            return {"disk": [], "errors": [f"host: no figures within {limit:g}s"]}
        name = job.split(":", 1)[1]
        return {"target": name, "status": "down", "latency_ms": None, "problem": "unreachable",
                "error": f"no answer within {limit:g}s", "details": {}}

    found = run_bounded(jobs, timed_out)
    host = found.pop("host")
    errors: list[str] = list(host.pop("errors", []))
    rows = {job.split(":", 1)[1]: row for job, row in found.items()}
    report_targets: dict[str, dict[str, Any]] = {}
    for name in names:
        row = rows[name]
        status = row["status"]
        details = dict(row.get("details") or {})
        if row.get("version"):
            details.setdefault("version", row["version"])
        if status == "up":
            reasons = _degraded(settings, name, details)
            if reasons:
                status = "degraded"
                details["degraded"] = "; ".join(reasons)
        if status == "down":
            errors.append(f"{name}: {row['error']}")
        rows[name] = {**row, "status": status, "details": details}
        report_targets[name] = {"status": status, "latency_ms": row.get("latency_ms"),
                                "error": row.get("error"), "details": details}
    report: dict[str, Any] = {
        "timestamp": iso_z(started), "status": "healthy", "score": 100.0,
        "targets": report_targets,
        "host": {"cpu_percent": host.get("cpu_percent"),
                 "memory_percent": host.get("memory_percent"), "load": host.get("load"),
                 "cpu_count": host.get("cpu_count"),
                 "disk": [{"path": d["path"], "percent": d["percent"],
                           "free_bytes": d["free_bytes"], "total_bytes": d["total_bytes"]}
                          for d in host.get("disk", [])]},
        "alerts": [], "errors": errors}
    observations = rules.health_observations(settings.alerts, report)
    report["score"] = score(report, observations)
    report["status"] = overall_status(report, observations)
    if store is not None:
        from wellkept.alerts import AlertCenter
        from wellkept.health.transitions import note_transitions

        note_transitions(store, rows, names)
        touched = AlertCenter(settings.alerts, store).observe(observations)
        report["alerts"] = [a for a in touched if a["state"] == "firing"]
    else:
        report["alerts"] = [{"name": o.name, "severity": str(o.severity), "value": o.value,
                             "target": o.target, "message": o.message,
                             **({"subject": o.subject} if o.subject else {})}
                            for o in observations if o.severity is not None]
    return report


def _degraded(settings: Settings, name: str, details: dict[str, Any]) -> list[str]:
    reasons = [str(details["degraded"])] if details.get("degraded") else []
    for obs in rules.figure_observations(settings.alerts, name, details, rules.TARGET_FIGURES):
        if obs.severity is not None:
            reasons.append(obs.message.split(": ", 1)[-1])
    return reasons
