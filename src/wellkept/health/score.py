"""The health score and the overall status, from a report and the alert observations.

**Score** (0-100): the mean of one component per target plus one for the host, times 100,
rounded to one decimal. A target scores 1 when ``up`` or ``locked``, 0.5 when ``degraded`` and
0 when ``down``. The host scores 1 when CPU, memory and every disk checked are under their
warning thresholds, 0.5 when the worst of them is at a warning level (or when one of its
figures could not be read, such as a ``health.disks`` path that does not exist), 0 when one is
critical. With five targets and the host, one target down gives 83.3.

**Status**: ``unhealthy`` when a target is down or any alert is critical; ``degraded`` when a
target is degraded, any alert is at warning level, or a host figure could not be read (a disk
nobody can see filling up is not a healthy one); ``healthy`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wellkept.alerts.rules import Observation
from wellkept.types import Severity

TARGET_SCORES = {"up": 1.0, "locked": 1.0, "degraded": 0.5, "down": 0.0}


def _host_component(observations: Sequence[Observation], host_unread: bool) -> float:
    host = [o.severity for o in observations if o.target == "host" and o.severity is not None]
    if Severity.CRITICAL in host:
        return 0.0
    return 0.5 if host or host_unread else 1.0


def score(report: dict[str, Any], observations: Sequence[Observation], *,
          host_unread: bool = False) -> float:
    """``host_unread``: some host figure (a disk path, or all of them) could not be read."""
    parts = [TARGET_SCORES.get(t["status"], 0.0) for t in report["targets"].values()]
    parts.append(_host_component(observations, host_unread))
    return round(100.0 * sum(parts) / len(parts), 1)


def overall_status(report: dict[str, Any], observations: Sequence[Observation], *,
                   host_unread: bool = False) -> str:
    statuses = {t["status"] for t in report["targets"].values()}
    severities = {o.severity for o in observations if o.severity is not None}
    if "down" in statuses or Severity.CRITICAL in severities:
        return "unhealthy"
    if "degraded" in statuses or severities or host_unread:
        return "degraded"
    return "healthy"
