"""State over HTTP: status, schedules (with pause and resume), per-task figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from wellkept.api.context import ApiContext
from wellkept.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, NOT_FOUND
from wellkept.api.models import PauseResult, TaskFigures, TaskMetrics
from wellkept.records import iso_z

ScheduleId = Annotated[str, Path(min_length=1, max_length=200)]


def router(api: ApiContext) -> APIRouter:
    routes = APIRouter(prefix="/maintenance", tags=["state"], responses=COMMON_RESPONSES)

    @routes.get("/status", response_model=dict[str, Any])
    def status(schedules: bool = False) -> Response:
        """Coordinator state, running runs (with progress), the last result per task and target,
        recovery health (`wellkept status -o json`); `schedules=true` adds the schedules.
        `process` is this server's own coordinator: leader or not, jobs running and queued.
        At most one second old (`timestamp` says when it was read)."""
        from wellkept.status import status_report

        def compute() -> bytes:
            report = status_report(api.engine, with_schedules=schedules)
            report["process"] = api.coordinator.snapshot() if api.coordinator else None
            return json.dumps(report, default=str, separators=(",", ":")).encode()

        body = api.cache.get(f"status:{schedules}", compute)
        return Response(body, media_type="application/json",
                        headers={"Cache-Control": "max-age=1"})

    @routes.get("/schedule")
    def schedule() -> list[dict[str, Any]]:
        """Every schedule: cron, state (paused, enabled), next and last fire time, tasks."""
        from wellkept.status import schedule_rows

        return schedule_rows(api.engine)

    def set_paused(request: Request, name: str, paused: bool) -> PauseResult:
        from wellkept.history import schedules

        if name not in api.engine.settings.schedules:
            raise HTTPException(404, f"unknown schedule {name!r}; defined schedules: "
                                + (", ".join(api.engine.settings.schedules) or "(none)"))
        client = request.client.host if request.client else "?"
        changed = schedules.set_paused(api.engine.store, name, paused, datetime.now(UTC),
                                       f"api@{client}")
        return PauseResult(schedule=name, paused=paused, changed=changed)

    auth = [Depends(api.require_token)]
    responses: dict[int | str, dict[str, Any]] = {**AUTH_RESPONSES, **NOT_FOUND}

    @routes.post("/schedule/{schedule_id}/pause", dependencies=auth, responses=responses)
    def pause(request: Request, schedule_id: ScheduleId) -> PauseResult:
        """Pause a schedule: its slots are recorded as skipped (paused) until resumed."""
        return set_paused(request, schedule_id, True)

    @routes.post("/schedule/{schedule_id}/resume", dependencies=auth, responses=responses)
    def resume(request: Request, schedule_id: ScheduleId) -> PauseResult:
        """Resume a schedule from its next slot (paused slots are not caught up)."""
        return set_paused(request, schedule_id, False)

    @routes.get("/metrics", responses=NOT_FOUND)
    def task_metrics(task_name: Annotated[str | None, Query(max_length=200)] = None,
                     days: Annotated[int, Query(ge=1, le=3650)] = 30) -> TaskMetrics:
        """Per-task figures over the last `days` days: runs by status, success rate,
        durations (mean, p50, p95, max), rows deleted and bytes freed."""
        from wellkept.history.periods import period_runs
        from wellkept.reports.stats import task_figures

        until = datetime.now(UTC)
        since = until - timedelta(days=days)
        rows = period_runs(api.engine.store, since, until, task=task_name or None)
        if task_name and not rows and not api.task_known(task_name):
            raise HTTPException(404, f"unknown task {task_name!r}: not configured, not a kind, "
                                     "and no runs in the history")
        figures = [TaskFigures.model_validate(f) for f in task_figures(rows)]
        return TaskMetrics(since=iso_z(since) or "", until=iso_z(until) or "", tasks=figures)

    return routes
