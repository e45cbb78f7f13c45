"""Health over HTTP: seed 004's recovery endpoints, the detailed health, and ``/metrics``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from wellkept.api.context import ApiContext
from wellkept.api.errors import COMMON_RESPONSES
from wellkept.api.models import DetailedHealth, RecoveryHealth, RecoveryMetrics
from wellkept.records import iso_z

_RANK = {"healthy": 0, "unknown": 0, "degraded": 1, "unhealthy": 2}


def worst(*statuses: str) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 2))


def router(api: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["health"], responses=COMMON_RESPONSES)

    @routes.get("/health/recovery")
    def recovery() -> RecoveryHealth:
        """Recovery health: queue depth, recent failures, orphaned and stuck
        runs, and an overall verdict."""
        return RecoveryHealth.model_validate(api.engine.recovery_health()["health"])

    @routes.get("/health/recovery/metrics")
    def recovery_metrics() -> RecoveryMetrics:
        """Recovery figures: runs by state over 24 hours, recovery attempts and
        their success rate, the mean time a recovery took."""
        return RecoveryMetrics.model_validate(api.engine.recovery_health()["metrics"])

    @routes.get("/health/detailed")
    def detailed() -> DetailedHealth:
        """The newest health check (targets, host, score), recovery health, the coordinator
        and the alerts firing, with one overall status."""
        from wellkept.alerts import AlertCenter
        from wellkept.history.health_figures import latest_report
        from wellkept.status import coordinator_state

        now = datetime.now(UTC)
        rec = api.engine.recovery_health()
        found = latest_report(api.engine.store)
        health = found.report if found else None
        checked = str(health.get("status")) if health else "unknown"
        overall = worst(checked, rec["health"]["overall_health"])
        return DetailedHealth(
            status=overall if overall in _RANK else "unhealthy",
            timestamp=iso_z(now) or "", health=health,
            health_age_seconds=round((now - found.taken_at).total_seconds(), 3)
            if found else None,
            recovery=RecoveryHealth.model_validate(rec["health"]),
            recovery_metrics=RecoveryMetrics.model_validate(rec["metrics"]),
            coordinator=coordinator_state(api.engine, now),
            alerts=AlertCenter(api.engine.settings.alerts, api.engine.store).firing())

    @routes.get("/metrics", response_class=Response, responses={200: {
        "content": {"text/plain": {"schema": {"type": "string"}}},
        "description": "Prometheus text exposition (CONTRACT §5)"}})
    def metrics() -> Response:
        """The Prometheus exposition of the current state (what `wellkept metrics` prints)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        from wellkept.metrics import exposition

        body: Any = exposition(api.engine.settings, api.engine.store, api.engine.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return routes
