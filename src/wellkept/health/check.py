"""Check every target and the host at once and build CONTRACT §3's health report.

Each target runs ``Connector.health()`` in its own thread, bounded by the target's ``timeout``;
the host's figures are read meanwhile. The whole check takes as long as its slowest target,
and at most the largest timeout. Nothing here raises: a target that cannot be checked is
``down`` with the reason, and a bug in a connector is that target's error.

``wellkept health`` gives the check a head start (``head_start``): the threads start as soon
as the config is read, and the health run that the engine makes a moment later takes them
over, so loading the history store and writing the run's first record overlap the network
waits instead of coming before them. That keeps the whole command within the largest timeout
plus about half a second even when a target swallows packets.

A target is ``up`` when it answers, ``locked`` when another process holds it (a DuckDB file an
ingest job writes: in use, so healthy), ``degraded`` when it answers but one of its figures is at
or past its warning threshold (or it says it cannot fully serve, e.g. Redis loading its data),
and ``down`` when it does not answer. The score and overall status are in ``health.score``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wellkept.alerts import rules
from wellkept.config import HOST_TARGET
from wellkept.health.score import overall_status, score
from wellkept.probe import Bounded, InChild, Jobs, ping_target, start_bounded
from wellkept.records import iso_z, utcnow

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore
    from wellkept.registry import Registry


@dataclass(frozen=True)
class _Started:
    """A check under way: its inputs, when it began, and its threads (or child process)."""

    settings: Settings
    names: tuple[str, ...]
    paths: tuple[str, ...]
    began: datetime
    running: Bounded | InChild


_head: _Started | None = None
_head_lock = threading.Lock()


def _inputs(settings: Settings, targets: list[str] | None,
            disks: list[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The targets (all but the host by default) and disk paths a check looks at."""
    names = tuple(n for n in (targets if targets else sorted(settings.targets))
                  if n != HOST_TARGET)
    return names, tuple(disks if disks is not None else settings.health.disks)


def _timed_out(job: str, limit: float) -> dict[str, Any]:
    if job == "host":
        return {"disk": [], "errors": [f"host: no figures within {limit:g}s"]}
    name = job.split(":", 1)[1]
    return {"target": name, "status": "down", "latency_ms": None, "problem": "unreachable",
            "error": f"no answer within {limit:g}s", "details": {}}


def _start(settings: Settings, registry: Registry, targets: list[str] | None,
           disks: list[str] | None, *, own_process: bool = False) -> _Started:
    from wellkept.connectors.host import HostConnector

    names, paths = _inputs(settings, targets, disks)
    jobs: Jobs = {
        f"target:{n}": (lambda n=n: ping_target(n, settings, registry, health=True),  # type: ignore[misc]
                        settings.targets[n].timeout.total_seconds())
        for n in names}
    jobs["host"] = (lambda: HostConnector.figures(list(paths)),
                    settings.targets[HOST_TARGET].timeout.total_seconds())
    return _Started(settings, names, paths, utcnow(),
                    start_bounded(jobs, _timed_out, own_process=own_process))


def head_start(settings: Settings, registry: Registry, *, targets: list[str] | None = None,
               disks: list[str] | None = None) -> None:
    """Start the check now, for the health run this process is about to make with the same
    settings, targets and disks; that run's ``check_health`` takes it over. A head start that
    does not match that check, or is older than its longest timeout, is abandoned then.

    The checks run in a child process when this one has no other thread yet (see
    ``probe.InChild``): on a machine with two cores the drivers' imports and the checks then
    take no time from loading the store."""
    global _head
    started = _start(settings, registry, targets, disks, own_process=True)
    with _head_lock:
        _head = started


def _take_head(settings: Settings, targets: list[str] | None,
               disks: list[str] | None) -> _Started | None:
    global _head
    with _head_lock:
        started, _head = _head, None
    if started is None:
        return None
    fresh = time.monotonic() - started.running.started < max(started.running.limits.values())
    if started.settings is settings and fresh \
            and (started.names, started.paths) == _inputs(settings, targets, disks):
        return started
    started.running.abandon()  # not this check's: stop its child process, if it has one
    return None


def check_health(settings: Settings, registry: Registry, *, store: HistoryStore | None = None,
                 targets: list[str] | None = None,
                 disks: list[str] | None = None) -> dict[str, Any]:
    """The health report; with ``store``, alerts are evaluated and kept (backup freshness
    among them, see ``backups.watch``), and each target's change of state is logged once
    (see ``health.transitions``)."""
    started = _take_head(settings, targets, disks) or _start(settings, registry, targets, disks)
    names = list(started.names)
    found = started.running.collect()
    host = found.pop("host")
    errors: list[str] = list(host.pop("errors", []))
    host_unread = bool(errors)  # a disk path that is missing, or no figures at all in time
    rows = {job.split(":", 1)[1]: row for job, row in found.items()}
    report_targets: dict[str, dict[str, Any]] = {}
    declared: dict[str, str | None] = {}  # what each target says of itself (target_degraded)
    for name in names:
        row = rows[name]
        status = row["status"]
        details = dict(row.get("details") or {})
        declared[name] = details.get("degraded")
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
        "timestamp": iso_z(started.began), "status": "healthy", "score": 100.0,
        "targets": report_targets,
        "host": {"cpu_percent": host.get("cpu_percent"),
                 "memory_percent": host.get("memory_percent"), "load": host.get("load"),
                 "cpu_count": host.get("cpu_count"),
                 "disk": [{"path": d["path"], "percent": d["percent"],
                           "free_bytes": d["free_bytes"], "total_bytes": d["total_bytes"]}
                          for d in host.get("disk", [])]},
        "alerts": [], "errors": errors}
    observations = rules.health_observations(settings.alerts, report, declared)
    if store is not None:
        from wellkept.backups import watch

        # not a figure of any target's server: judged from the store's backups catalog, and
        # counted in the status like any alert (a missed RPO is critical), not in the score
        observations += watch.observations(settings, store, started.began,
                                           targets=names if targets else None)
    report["score"] = score(report, observations, host_unread=host_unread)
    report["status"] = overall_status(report, observations, host_unread=host_unread)
    if store is not None:
        from wellkept.alerts import AlertCenter
        from wellkept.health.transitions import note_transitions

        note_transitions(store, rows, names)
        center = AlertCenter(settings.alerts, store)
        # with the alerts of what left the config, resolved in the same evaluation
        touched = center.observe(observations + center.orphans(settings, registry))
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
