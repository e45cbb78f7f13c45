"""Families of the current state: targets up, the health score, backups verified, alerts."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric

from wellkept.history.schema import alerts, backups, runs, target_status
from wellkept.metrics.collector import Source
from wellkept.metrics.runs import _unix


def target_families(src: Source) -> Iterable[Metric]:
    up = GaugeMetricFamily("wellkept_target_up",
                           "Whether the last health check reached each target (1) or not (0); "
                           "a locked DuckDB file is in use, so up", labels=["target"])
    for target, status in src.conn.execute(sa.select(target_status.c.target,
                                                     target_status.c.status)
                                           .order_by(target_status.c.target)):
        if target in src.settings.targets:  # a target removed from the config is gone
            up.add_metric([target], 0 if status == "down" else 1)
    yield up
    score = GaugeMetricFamily("wellkept_health_score",
                              "The 0-100 score of the newest health check")
    row = src.conn.execute(sa.select(runs.c.details).where(
        runs.c.kind == "health", runs.c.status != "running", runs.c.dry_run.is_(False))
        .order_by(runs.c.started_at.desc()).limit(1)).first()
    value = (row[0] or {}).get("score") if row else None
    if isinstance(value, int | float):
        score.add_metric([], float(value))
    yield score


def backup_families(src: Source) -> Iterable[Metric]:
    verified = GaugeMetricFamily("wellkept_backup_last_verified_timestamp_seconds",
                                 "When the newest backup of each target that passed "
                                 "verification was verified (Unix time)", labels=["target"])
    for target, moment in src.conn.execute(
            sa.select(backups.c.target, sa.func.max(backups.c.verified_at))
            .where(backups.c.verify_status == "passed", backups.c.pruned_at.is_(None))
            .group_by(backups.c.target)):
        if moment is not None:
            verified.add_metric([target], _unix(moment))
    yield verified


def alert_families(src: Source) -> Iterable[Metric]:
    firing = GaugeMetricFamily("wellkept_alerts_firing", "Alerts firing now",
                               labels=["name", "target", "severity"])
    for name, target, severity, count in src.conn.execute(
            sa.select(alerts.c.name, alerts.c.target, alerts.c.severity, sa.func.count())
            .where(alerts.c.state == "firing")
            .group_by(alerts.c.name, alerts.c.target, alerts.c.severity)):
        firing.add_metric([name, target, severity], count)
    yield firing
