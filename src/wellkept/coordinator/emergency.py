"""Emergency triggers: a condition over the latest health figures starts tasks, ahead of the
queue, at most once per cooldown.

Each trigger is checked every ``check_every``. It fires when the newest health run is no
older than ``max_age`` (a stale reading never fires) and its figures meet ``when``. Firing is
claimed in the store (``wk_emergency_state``), so the cooldown holds across coordinators and
restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wellkept.conditions import Condition
from wellkept.config import Settings
from wellkept.history import coordination
from wellkept.history.health_figures import latest_health
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z

log = logging.getLogger("wellkept.coordinator")


@dataclass(frozen=True)
class Firing:
    name: str
    tasks: list[str]
    info: dict[str, Any]


class EmergencyWatcher:
    def __init__(self, settings: Settings, store: HistoryStore) -> None:
        self.store = store
        self.triggers = {name: (t, Condition.parse(t.when))
                         for name, t in settings.emergency.items() if t.enabled}
        self._next_check: dict[str, datetime] = {}

    def next_check(self) -> datetime | None:
        return min(self._next_check.values(), default=None)

    def due(self, now: datetime) -> list[Firing]:
        """The triggers that fire now (each claimed against its cooldown)."""
        todo = [n for n in self.triggers if self._next_check.get(n, now) <= now]
        if not todo:
            return []
        health = latest_health(self.store)
        fired = []
        for name in todo:
            settings, condition = self.triggers[name]
            self._next_check[name] = now + settings.check_every
            if health is None or now - health.taken_at > settings.max_age:
                continue
            if not condition.holds(health.figures):
                continue
            seen = {f: health.figures.get(f) for f in condition.figures()}
            if not coordination.claim_emergency(self.store, name, now, settings.cooldown,
                                                {k: v for k, v in seen.items()
                                                 if v is not None}):
                continue  # fired within its cooldown
            log.warning("emergency %s: %s holds (%s); running %s", name, condition.text,
                        ", ".join(f"{k}={v}" for k, v in seen.items()), ", ".join(settings.run))
            fired.append(Firing(name, list(settings.run), {
                "trigger": name, "condition": condition.text, "figures": seen,
                "health_run_id": health.run_id, "health_at": iso_z(health.taken_at)}))
        return fired
