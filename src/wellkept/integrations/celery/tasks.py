"""The Celery tasks a worker runs: ``wellkept.run`` (one run the coordinator sent), and, for
teams with their own beat, ``wellkept.fire_schedule`` and ``wellkept.recover``.

``wellkept.run`` claims its run in the store before anything else (compare-and-set on the
dispatch row): a message delivered a second time, for a run already claimed or finished, does
nothing but log it. The run then goes through the engine like any other, in this worker
process: its record, progress, checkpoints and lease go straight into the shared store, and
its target lock is the store's advisory lock, which holds across machines.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from wellkept.errors import ConfigError
from wellkept.history import dispatches, recovery_log
from wellkept.liveness import host_id
from wellkept.types import RunStatus, Trigger

if TYPE_CHECKING:
    from celery import Celery, Task

    from wellkept.engine import Engine

log = logging.getLogger("wellkept.worker")

_engine: tuple[int, Engine] | None = None


def worker_engine(app: Celery) -> Engine:
    """This process's engine, made on first use: after the fork, so no prefork child shares
    a database connection with its parent or a sibling."""
    global _engine
    if _engine is None or _engine[0] != os.getpid():
        from wellkept.config import load_config
        from wellkept.engine import Engine
        from wellkept.integrations.celery.factory import CONFIG_KEY

        _engine = (os.getpid(), Engine(load_config(app.conf.get(CONFIG_KEY))))
    return _engine[1]


def register(app: Celery) -> None:
    from wellkept.integrations.celery.factory import (
        TASK_FIRE_SCHEDULE,
        TASK_RECOVER,
        TASK_RUN,
    )

    app.task(name=TASK_RUN, bind=True, ignore_result=True)(run)
    app.task(name=TASK_FIRE_SCHEDULE, bind=True, ignore_result=True)(fire_schedule)
    app.task(name=TASK_RECOVER, bind=True, ignore_result=True)(recover)


def _worker_name(task: Task) -> str:
    return str(task.request.hostname or f"celery@{socket.gethostname()}")


def run(celery_task: Task, **payload: Any) -> str:
    """Claim the run, then execute it; what became of it (for the worker's log)."""
    engine = worker_engine(celery_task.app)
    store, run_id = engine.store, str(payload["run_id"])
    worker = _worker_name(celery_task)
    redelivered = bool((celery_task.request.delivery_info or {}).get("redelivered"))
    token = dispatches.claim(store, run_id, worker=worker, pid=os.getpid(), host_id=host_id(),
                             now=datetime.now(UTC))
    if token is None:
        found = dispatches.get(store, run_id)
        where = "unknown to the store" if found is None else (
            f"already {found.status}" + (f" by {found.worker}" if found.worker else ""))
        log.warning("run %s of %s on %s: duplicate message ignored%s: the run is %s", run_id,
                    payload.get("task"), payload.get("target"),
                    " (redelivered)" if redelivered else "", where)
        return "duplicate"
    from wellkept.executors.payload import decode

    try:
        message = decode(engine, payload)
    except (ConfigError, ValidationError, KeyError, ValueError) as exc:
        return _refuse(engine, payload, token, f"this worker cannot run it: {exc}")
    request = message.request
    if request.recovery is not None:
        spec = request.recovery
        if not recovery_log.refresh_claims(store, spec.claimer, [spec.of.run_id],
                                           datetime.now(UTC)):
            # another recoverer took the entry over (or it was recovered) meanwhile
            log.warning("recovery run %s of %s not started: %s no longer holds the recovery "
                        "of run %s", run_id, request.task, spec.claimer, spec.of.run_id)
            dispatches.finish(store, run_id, token, datetime.now(UTC), str(RunStatus.SKIPPED))
            return "not started"
    details = {**request.details, "celery": {"worker": worker, "task_id": run_id,
                                              "redelivered": redelivered,
                                              "queue": (celery_task.request.delivery_info or {})
                                              .get("routing_key")}}
    record = engine.run_one(replace(request, details=details), trigger=message.trigger,
                            dry_run=message.dry_run)
    if not dispatches.finish(store, run_id, token, datetime.now(UTC), str(record.status)):
        log.warning("run %s ended %s, but its claim had been handed back", run_id,
                    record.status)
    return str(record.status)


def _refuse(engine: Engine, payload: dict[str, Any], token: str, reason: str) -> str:
    """Record a run this worker cannot make as failed, so the history says why."""
    from wellkept.records import RunRecord

    now = datetime.now(UTC)
    log.error("run %s of %s on %s: %s", payload["run_id"], payload.get("task"),
              payload.get("target"), reason)
    record = RunRecord(run_id=str(payload["run_id"]), task=str(payload.get("task")),
                       kind=str(payload.get("kind")), target=str(payload.get("target")),
                       status=RunStatus.RUNNING, dry_run=bool(payload.get("dry_run")),
                       trigger=Trigger(payload.get("trigger", "manual")), started_at=now,
                       host=socket.gethostname(), pid=os.getpid())
    engine.store.start_run(record, dict(payload.get("params") or {}))
    engine.store.finish_run(replace(record, status=RunStatus.FAILED, finished_at=now,
                                    duration_seconds=0.0, message=reason, errors=[reason]))
    dispatches.finish(engine.store, record.run_id, token, now, str(RunStatus.FAILED))
    return str(RunStatus.FAILED)


def fire_schedule(task: Task, schedule: str) -> str:
    """A beat's tick for ``schedule``: claim its latest slot in the store (so two beats, or a
    beat and a coordinator, fire it once), then run its tasks here, in order."""
    from wellkept.coordinator.worker_host import WorkerHost
    from wellkept.scheduler import SlotDecision, SlotOutcome

    engine = worker_engine(task.app)
    if schedule not in engine.settings.schedules:
        log.error("beat fired schedule %r, which is not in the config", schedule)
        return "unknown schedule"
    spec = engine.settings.schedule_spec(schedule)
    now = datetime.now(UTC)
    # the slot beat fired for: the latest fire time up to now (beat is a little late)
    due = spec.cron.between(now - max(spec.grace, timedelta(minutes=1)), now, spec.timezone)
    if not due:
        log.warning("beat fired schedule %s at %s, but no slot of it is due", schedule, now)
        return "not due"
    host = WorkerHost(engine)
    from wellkept.history import schedules

    if not schedules.claim_slot(engine.store, schedule, SlotDecision(due[-1], SlotOutcome.QUEUED),
                                now, host.coordinator_id):
        log.warning("schedule %s slot %s was already claimed: duplicate beat ignored",
                    schedule, due[-1].isoformat())
        return "duplicate"
    schedules.mark_fired(engine.store, schedule, due[-1], now)
    host.run_slot(schedule, due[-1])
    return "fired"


def recover(task: Task) -> str:
    """A beat's recovery pass: find interrupted runs and recover them here."""
    from wellkept.recovery import Recoverer

    engine = worker_engine(task.app)
    report = Recoverer(engine, claimer=f"beat:{_worker_name(task)}:{os.getpid()}").run()
    return f"found {len(report.found)}, recovered {len(report.recovered)}"
