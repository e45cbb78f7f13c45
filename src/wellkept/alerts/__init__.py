"""Alerts: thresholds and run outcomes (rules), their lifecycle in the store (book), the
senders (channels), and the one entry point that ties them together (center)."""

from wellkept.alerts.center import AlertCenter
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
