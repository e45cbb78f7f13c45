"""A run request as a Celery message: JSON, names only, no secrets.

The message names the task, its kind and its target, and carries the parameters the
coordinator resolved; the worker finds the target's URL (and its password) in its own copy of
``wellkept.yml``, so no credential ever crosses the broker. A recovery names the interrupted
run; the worker reads that run's state fresh from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wellkept.errors import ConfigError
from wellkept.types import Trigger

if TYPE_CHECKING:
    from wellkept.engine import Engine, RunRequest

#: bumped when the message changes shape, so an old worker refuses a new message clearly
VERSION = 1


@dataclass(frozen=True)
class Message:
    """A decoded message: the request to run and how."""

    request: RunRequest
    trigger: Trigger
    dry_run: bool


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def encode(request: RunRequest, *, trigger: Trigger, dry_run: bool) -> dict[str, Any]:
    assert request.run_id is not None
    recovery = None
    if request.recovery is not None:
        spec = request.recovery
        recovery = {"of": spec.of.run_id, "reason": spec.reason, "claimer": spec.claimer,
                    "interrupted_at": _iso(spec.interrupted_at)}
    return {
        "v": VERSION, "run_id": request.run_id, "task": request.task, "kind": request.kind,
        "target": request.target, "params": request.params.model_dump(mode="json"),
        "timeout": _seconds(request.timeout), "lock_wait": _seconds(request.lock_wait),
        "schedule": request.schedule, "retries": request.retries,
        "retry_backoff": _seconds(request.retry_backoff), "priority": request.priority,
        "scheduled_for": _iso(request.scheduled_for), "recovery": recovery,
        "details": request.details, "trigger": str(trigger), "dry_run": dry_run,
    }


def decode(engine: Engine, payload: dict[str, Any]) -> Message:
    """The request a message asks for; ConfigError when this worker cannot run it (another
    version, or a config without its task kind or target)."""
    from wellkept.engine import RunRequest
    from wellkept.history import recovery_log
    from wellkept.recovery.spec import RecoverySpec

    if payload.get("v") != VERSION:
        raise ConfigError(f"the message is of version {payload.get('v')!r}, this worker "
                          f"reads version {VERSION}: run the same wellkept everywhere")
    kind, target = payload["kind"], payload["target"]
    if kind not in engine.registry.tasks:
        raise ConfigError(f"this worker knows no task kind {kind!r} (a plugin missing from "
                          "its config?): deploy the same wellkept.yml to every worker")
    if target not in engine.settings.targets:
        raise ConfigError(f"this worker's config has no target {target!r}: deploy the same "
                          "wellkept.yml to every worker")
    params = engine.registry.task_class(kind).Params.model_validate(payload["params"])
    recovery = None
    if payload.get("recovery"):
        info = payload["recovery"]
        state = recovery_log.get_state(engine.store, info["of"])
        if state is None:
            raise ConfigError(f"the run {info['of']} it recovers is no longer in the store")
        recovery = RecoverySpec(of=state, reason=info["reason"], claimer=info["claimer"],
                                interrupted_at=datetime.fromisoformat(info["interrupted_at"]))
    timeout = payload.get("timeout")
    request = RunRequest(
        task=payload["task"], kind=kind, target=target, params=params,
        timeout=None if timeout is None else timedelta(seconds=timeout),
        lock_wait=timedelta(seconds=payload["lock_wait"]), schedule=payload.get("schedule"),
        retries=int(payload.get("retries") or 0),
        retry_backoff=timedelta(seconds=payload["retry_backoff"]),
        priority=payload.get("priority"),
        scheduled_for=(datetime.fromisoformat(payload["scheduled_for"])
                       if payload.get("scheduled_for") else None),
        recovery=recovery, run_id=payload["run_id"], details=dict(payload.get("details") or {}))
    return Message(request, Trigger(payload["trigger"]), bool(payload.get("dry_run")))


def label(payload: dict[str, Any]) -> str:
    """How the run shows in Flower and in worker logs: ``wellkept.run purge-sessions@app``."""
    name = f"wellkept.run {payload['task']}@{payload['target']}"
    return name + (" (recovery)" if payload.get("recovery") else "")
