"""Alerts: thresholds and run outcomes (rules), their lifecycle in the store (book), the
senders (channels), and the one entry point that ties them together (center)."""

from typing import TYPE_CHECKING, Any

from wellkept.alerts.rules import (
    BACKUP_FRESHNESS,
    DEFAULTS,
    MISSED_SCHEDULE,
    TARGET_DOWN,
    TASK_FAILURE,
    Observation,
)

__all__ = ["BACKUP_FRESHNESS", "DEFAULTS", "MISSED_SCHEDULE", "TARGET_DOWN", "TASK_FAILURE",
           "AlertCenter", "Observation"]

if TYPE_CHECKING:
    from wellkept.alerts.center import AlertCenter


def __getattr__(name: str) -> Any:
    # the center needs the store (SQLAlchemy); the rules alone must stay cheap to import,
    # since `wellkept health` starts its checks before it loads the store
    if name == "AlertCenter":
        from wellkept.alerts.center import AlertCenter

        return AlertCenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
