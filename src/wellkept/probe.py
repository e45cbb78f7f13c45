"""Ping every target at once, each bounded by its own timeout; never raises."""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wellkept.config import Settings
from wellkept.errors import ConnectorError, WellkeptError
from wellkept.redact import redact
from wellkept.registry import Registry

log = logging.getLogger("wellkept.probe")
SLACK_SECONDS = 0.5


def ping_target(name: str, settings: Settings, registry: Registry) -> dict[str, Any]:
    target = settings.targets[name]
    row: dict[str, Any] = {"target": name, "url": target.redacted_url, "status": "down",
                           "latency_ms": None, "version": "", "error": None, "details": {}}
    t0 = time.perf_counter()
    connector = registry.connector_class(target.scheme)(name, target)
    try:
        ping = connector.ping()
    except ConnectorError as exc:
        row["error"] = redact(str(exc))
        log.warning("%s is down: %s", name, row["error"])
    except WellkeptError as exc:
        row["error"] = redact(str(exc))
        log.warning("%s cannot be checked: %s", name, row["error"])
    except Exception as exc:  # a bug in a connector must not hide the other targets
        row["error"] = redact(f"{type(exc).__name__}: {exc}")
        log.error("pinging %s crashed: %s", name, row["error"], exc_info=True)
    else:
        row.update(status="locked" if ping.details.get("locked") else "up",
                   latency_ms=round(ping.latency_ms, 2), version=ping.version,
                   details=ping.details)
    finally:
        # closing a half-open connection may fail; the ping result stands
        with contextlib.suppress(Exception):
            connector.close()
    if row["latency_ms"] is None and row["status"] == "down":
        row["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return row


def ping_all(settings: Settings, registry: Registry | None = None) -> list[dict[str, Any]]:
    """Ping every target concurrently; a target that hangs costs at most its own timeout."""
    registry = registry or Registry.default()
    names = sorted(settings.targets)
    pool = ThreadPoolExecutor(max_workers=min(16, len(names)) or 1)
    start = time.monotonic()
    futures = {n: pool.submit(ping_target, n, settings, registry) for n in names}
    results = []
    for name in names:
        limit = settings.targets[name].timeout.total_seconds() + SLACK_SECONDS
        try:
            results.append(futures[name].result(
                timeout=max(0.0, start + limit - time.monotonic())))
        except TimeoutError:
            results.append({"target": name, "url": settings.targets[name].redacted_url,
                            "status": "down", "latency_ms": None, "version": "",
                            "error": f"no answer within {limit:g}s", "details": {}})
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def check_store(url: str) -> dict[str, Any]:
    """Open the history store (applying migrations) and read from it; never raises."""
    from wellkept.history.store import HistoryStore

    store = HistoryStore(url)
    row: dict[str, Any] = {"url": redact(url), "error": None}
    try:
        store.list_runs(limit=1)
    except WellkeptError as exc:
        row["error"] = redact(str(exc))
    except Exception as exc:  # a bug must not hide the targets' results
        row["error"] = redact(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    return row
