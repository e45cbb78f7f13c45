"""The API's request and response bodies, as pydantic models: they are the OpenAPI document.

Response models describe CONTRACT §3's shapes (RUN) and seed 004's recovery health shapes.
Free-form parts (a run's ``metrics`` and ``details``, the status document's sections) are
declared as objects, so clients and schemathesis know their type without the API freezing
what tasks may report.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatusName = Literal["running", "completed", "partial_failure", "failed", "skipped",
                        "orphaned", "dead"]
TriggerName = Literal["manual", "schedule", "emergency", "recovery", "api"]


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: what went wrong, in one sentence, and the details."""

    error: str = Field(description="what went wrong")
    detail: list[dict[str, Any]] | None = Field(None, description=(
        "for invalid input: one entry per problem (where, what)"))


class RunModel(BaseModel):
    """One run (CONTRACT §3's RUN)."""

    run_id: str
    task: str
    kind: str
    target: str
    status: RunStatusName
    dry_run: bool
    trigger: TriggerName
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    message: str
    metrics: dict[str, float | int]
    details: dict[str, Any]
    errors: list[str]


class QueuedRun(BaseModel):
    """A run the API accepted that has not started yet (its row is written when it starts)."""

    run_id: str
    status: Literal["queued"] = "queued"
    task: str
    target: str


class RunOptions(BaseModel):
    """Optional body of ``POST /maintenance/tasks/{name}/run``."""

    # strict: `"dry_run": 0` or `"yes"` is a mistake to report, not a value to guess
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = Field(False, description="report what would be done, change nothing")
    target: str | None = Field(None, max_length=200, description=(
        "the target, for a built-in kind run directly (or to run an instance on another)"))


class Started(BaseModel):
    """Runs queued by a POST: the first run's id, and every id when a task fans out."""

    run_id: str = Field(description="the first run's id")
    run_ids: list[str] = Field(description="every run queued, in order")
    trigger: TriggerName
    dry_run: bool = False


class PauseResult(BaseModel):
    schedule: str
    paused: bool
    changed: bool = Field(description="false when the schedule already was so")


class ReportRequest(BaseModel):
    """Body of ``POST /maintenance/reports/generate``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    report_type: Literal["daily", "weekly"] = "daily"
    format_type: Literal["html", "json", "csv"] = "html"
    include_details: bool = Field(True, description=(
        "list every run of the period (the CSV always has one row per run)"))


class RecoveryHealth(BaseModel):
    """The answer of ``/health/recovery``: how interrupted runs are being recovered."""

    overall_health: Literal["healthy", "degraded", "unhealthy"]
    recovery_queue_depth: int
    recent_failure_count: int
    orphaned_task_count: int
    stuck_task_count: int
    timestamp: str


class RecoveryMetrics(BaseModel):
    """The answer of ``/health/recovery/metrics``: recovery figures over 24 hours."""

    task_state_distribution: dict[str, int]
    recovery_success_rate_24h: float | None
    total_recovery_attempts_24h: int
    successful_recoveries_24h: int
    average_recovery_time_seconds: float | None


class DetailedHealth(BaseModel):
    """``/health/detailed``: the newest health check and recovery health, in one status."""

    status: Literal["healthy", "degraded", "unhealthy", "unknown"] = Field(description=(
        "the worse of the health check's status and recovery's overall_health; unknown when "
        "no health check has run yet and recovery is healthy"))
    timestamp: str
    health: dict[str, Any] | None = Field(description=(
        "the newest health check's report (CONTRACT §3), or null when none ran"))
    health_age_seconds: float | None
    recovery: RecoveryHealth
    recovery_metrics: RecoveryMetrics
    coordinator: dict[str, Any]
    alerts: list[dict[str, Any]]


class TaskFigures(BaseModel):
    """Per-task figures of ``GET /maintenance/metrics``."""

    task: str
    runs: int
    completed: int
    partial_failure: int
    failed: int
    skipped: int
    success_rate: float | None = Field(description=(
        "percent of the runs that were not skipped that completed; null with none"))
    duration_mean_seconds: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None
    duration_max_seconds: float | None
    rows_deleted: float
    bytes_freed: float
    last_run_at: str | None
    last_status: str | None


class TaskMetrics(BaseModel):
    since: str
    until: str
    tasks: list[TaskFigures]
