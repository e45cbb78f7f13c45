"""Engine figures under the engines' own exporter names (postgres_exporter's ``pg_*``…).

Each connector class maps its newest ``stats`` run and its last health status to samples
(``Connector.exporter_samples``); this module only groups them into families, so no engine is
named here. Dashboards built for postgres_exporter then read wellkept's figures unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric

from wellkept.config import HOST_TARGET
from wellkept.history.schema import runs, target_status
from wellkept.metrics.collector import Source


def engine_families(src: Source) -> Iterable[Metric]:
    states: dict[str, str] = {t: s for t, s in src.conn.execute(
        sa.select(target_status.c.target, target_status.c.status))}
    grouped: dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float], list[str]]] = {}
    for name, target in sorted(src.settings.targets.items()):
        if name == HOST_TARGET:
            continue
        cls = src.registry.connector_class(target.scheme)
        status = states.get(name)
        samples = cls.exporter_samples(name, _newest_stats(src, name),
                                       None if status is None else status != "down")
        for family, help_text, given, value in samples:
            keys = sorted(given)
            entry = grouped.setdefault(family, (help_text, {}, keys))
            entry[1][tuple((k, given.get(k, "")) for k in entry[2])] = value
    for family, (help_text, values, keys) in sorted(grouped.items()):
        metric = GaugeMetricFamily(family, help_text, labels=keys)
        for pairs, value in values.items():
            metric.add_metric([v for _, v in pairs], value)
        yield metric


def _newest_stats(src: Source, target: str) -> dict[str, Any] | None:
    row = src.conn.execute(sa.select(runs.c.metrics, runs.c.details, runs.c.finished_at).where(
        runs.c.kind == "stats", runs.c.target == target,
        runs.c.status.in_(("completed", "partial_failure")))
        .order_by(runs.c.started_at.desc()).limit(1)).first()
    if row is None:
        return None
    return {"metrics": row[0] or {}, "details": row[1] or {}, "finished_at": row[2]}
