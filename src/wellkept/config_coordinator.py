"""The config sections the coordinator reads: ``coordinator``, ``recovery`` and ``emergency``.

They live apart from ``config.py`` (which validates the whole file) because they are one
concern: how ``wellkept serve`` schedules, leases, recovers and reacts. Every value has a
default, so a config without these sections runs the coordinator as documented in
docs/coordinator.md.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wellkept.durations import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoordinatorSettings(_Model):
    """``coordinator:``: how ``wellkept serve`` runs."""

    max_concurrent: int = Field(2, ge=1, le=64, description=(
        "runs going at once; more wait in the queue (emergencies first)"))
    shutdown_grace: Duration = Field(timedelta(seconds=60), description=(
        "on SIGTERM, how long running tasks get to reach a checkpoint or finish"))
    leader_lease: Duration = Field(timedelta(seconds=30), description=(
        "how long the scheduling leader's lease lasts without renewal"))
    heartbeat: Duration = Field(timedelta(seconds=5), description=(
        "how often the coordinator renews its own record and the leader lease"))
    reap_every: Duration = Field(timedelta(seconds=15), description=(
        "how often orphaned runs are looked for and the recovery queue is worked"))

    @model_validator(mode="after")
    def _lease_outlasts_heartbeat(self) -> CoordinatorSettings:
        if self.leader_lease <= self.heartbeat * 2:
            raise ValueError("leader_lease must be more than twice heartbeat, so that one "
                             "late renewal does not lose the lease")
        return self


class RecoverySettings(_Model):
    """``recovery:``: leases on runs, and what happens to interrupted ones."""

    lease: Duration = Field(timedelta(seconds=60), description=(
        "a run's lease; its worker renews it every third of this. A run whose lease expired "
        "is orphaned"))
    max_attempts: int = Field(3, ge=0, le=100, description=(
        "recoveries of one interrupted job; the next interruption after that ends it as dead"))
    resume_above: float = Field(25.0, ge=0, le=100, description=(
        "resume from the last checkpoint when progress is above this percent (and the "
        "checkpoint is valid); else restart"))
    validate_above: float = Field(95.0, ge=0, le=100, description=(
        "above this percent, a task with a validate hook is only checked, not run again"))
    backoff: Duration = Field(timedelta(seconds=30), description=(
        "wait before recovering a run again after a recovery attempt was itself interrupted"))
    stuck_grace: Duration = Field(timedelta(minutes=5), description=(
        "a live run past its time limit by more than this counts as stuck"))
    retention: Duration = Field(timedelta(days=90), description=(
        "runs, checkpoints, slots and recovery records older than this are pruned"))

    @model_validator(mode="after")
    def _ordered(self) -> RecoverySettings:
        if self.validate_above < self.resume_above:
            raise ValueError("validate_above must not be below resume_above")
        if self.lease < timedelta(seconds=3):
            raise ValueError("lease must be at least 3s")
        return self

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease.total_seconds() / 3


class EmergencySettings(_Model):
    """``emergency.NAME:``: a condition over the latest health figures that starts tasks."""

    when: str = Field(description="a condition such as `disk_percent > 90` (docs/coordinator.md)")
    run: list[str] = Field(description="task instances to run, in this order, with trigger "
                                       "emergency")
    cooldown: Duration = Field(timedelta(hours=1), description=(
        "after firing, the trigger stays quiet this long"))
    max_age: Duration = Field(timedelta(minutes=15), description=(
        "health figures older than this are ignored (a stale reading never fires)"))
    check_every: Duration = Field(timedelta(seconds=30), description=(
        "how often the condition is evaluated"))
    enabled: bool = True

    @field_validator("run")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one task instance to run")
        return value
