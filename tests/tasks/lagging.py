"""An SQLite connector whose replicas lag on cue: replication lag is a fault these machines
cannot cause for real (no replication is configured), so its values are scripted."""

from __future__ import annotations

from wellkept.connectors.sqlite import SQLiteConnector

SCRIPT: list[float | None] = []
CALLS: list[float | None] = []


class LaggingSQLite(SQLiteConnector):
    def replication_lag(self) -> float | None:
        value = SCRIPT.pop(0) if SCRIPT else None
        CALLS.append(value)
        return value
