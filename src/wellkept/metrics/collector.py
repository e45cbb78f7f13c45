"""The collector: one store connection per scrape, handed to each family function."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from wellkept.records import utcnow
from wellkept.redact import redact

if TYPE_CHECKING:
    import sqlalchemy as sa

    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore
    from wellkept.registry import Registry

log = logging.getLogger("wellkept.metrics")


@dataclass(frozen=True)
class Source:
    """What a family function reads: an open store connection, the config, the registry."""

    conn: sa.Connection
    settings: Settings
    registry: Registry
    now: datetime
    #: for the figures that are functions of the store (wellkept.history.figures)
    store: HistoryStore


Family = Callable[[Source], Iterable[Metric]]


def families() -> list[Family]:
    from wellkept.metrics import exporter, runs, scheduler, state

    return [runs.task_families, state.target_families, state.backup_families,
            state.alert_families, scheduler.scheduler_families, exporter.engine_families]


class StoreCollector(Collector):
    """Reads the store at each collection; a family that fails is left out (and logged),
    and ``wellkept_metrics_errors`` counts them, so one broken part never blanks the rest."""

    def __init__(self, settings: Settings, store: HistoryStore,
                 registry: Registry | None = None) -> None:
        from wellkept.registry import Registry

        self.settings = settings
        self.store = store
        self.registry = registry or Registry.default()

    def collect(self) -> Iterator[Metric]:
        failed = 0
        with self.store.engine.connect() as conn:
            source = Source(conn, self.settings, self.registry, utcnow(), self.store)
            for family in families():
                try:
                    found = list(family(source))
                except Exception as exc:
                    failed += 1
                    log.error("metric family %s failed: %s", family.__name__,
                              redact(f"{type(exc).__name__}: {exc}"), exc_info=True)
                    conn.rollback()
                    continue
                yield from found
        errors = GaugeMetricFamily("wellkept_metrics_errors",
                                   "Metric families that could not be read at this collection")
        errors.add_metric([], failed)
        yield errors


def registry_for(settings: Settings, store: HistoryStore,
                 registry: Registry | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(settings, store, registry))
    return reg
