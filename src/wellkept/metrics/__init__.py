"""Prometheus exposition of wellkept's state, read from the history store (CONTRACT §5).

One collector asks a list of small family functions for their metric families; each reads one
part of the store (runs, targets and alerts, backups, the scheduler, engine figures). The same
collector serves ``wellkept metrics``, the textfile written after each run, and the API's
``/metrics``. No run ids go into labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wellkept.metrics.collector import StoreCollector, registry_for

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore
    from wellkept.registry import Registry


def exposition(settings: Settings, store: HistoryStore, registry: Registry | None = None
               ) -> bytes:
    """The text exposition format, as ``/metrics`` serves it."""
    from prometheus_client import generate_latest

    return bytes(generate_latest(registry_for(settings, store, registry)))


def write_textfile(settings: Settings, store: HistoryStore, path: str,
                   registry: Registry | None = None) -> None:
    """Write the exposition to ``path`` atomically (a temporary file renamed over it)."""
    import os

    from prometheus_client import write_to_textfile

    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    write_to_textfile(path, registry_for(settings, store, registry))


__all__ = ["StoreCollector", "exposition", "write_textfile"]
