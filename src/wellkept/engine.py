"""The engine: resolve what to run, then carry each run through the middleware chain.

``resolve`` turns names from the command line (task instances, built-in kinds with a target,
``--all``, ``--schedule``) into run requests, or raises UsageError before anything runs.
``run`` executes them one after another; a failing run never stops the next one. ``run_one``
is thread-safe: the coordinator calls it from its workers, and ``live_runs`` lists the runs in
flight in this process (a graceful shutdown asks each to stop at its next checkpoint).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

# what the store raises when its database goes away under a run
from sqlalchemy.exc import DBAPIError as StoreUnreachable

from wellkept import __version__
from wellkept.config import HOST_TARGET, Settings, TaskSettings, task_reference
from wellkept.connector import Connector
from wellkept.context import ProgressCallback, RunContext
from wellkept.errors import NotApplicable, Skip, UsageError, WellkeptError
from wellkept.history.store import HistoryStore
from wellkept.middleware import Middleware, Run, default_chain
from wellkept.middleware.history import record_of
from wellkept.records import RunRecord, TaskResult, iso_z, utcnow
from wellkept.redact import redact
from wellkept.registry import Registry
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus, Trigger, overall_status

if TYPE_CHECKING:
    from wellkept.recovery.spec import RecoverySpec

log = logging.getLogger("wellkept.engine")


@dataclass(frozen=True)
class RunRequest:
    """One run to make: a task instance (or a built-in kind) against one target."""

    task: str
    kind: str
    target: str
    params: TaskParams
    timeout: timedelta | None = None
    lock_wait: timedelta = timedelta(minutes=10)
    schedule: str | None = None
    retries: int = 0
    retry_backoff: timedelta = timedelta(seconds=30)
    #: None: the kind's own priority
    priority: int | None = None
    #: the slot a scheduled run is for
    scheduled_for: datetime | None = None
    #: set for a run that recovers an interrupted one
    recovery: RecoverySpec | None = None
    #: the run's id, when the caller must know it before the run starts
    run_id: str | None = None
    #: added to the run's details (e.g. which emergency trigger started it)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunBatch:
    """The outcome of one ``wellkept run``: every RUN record plus a summary (CONTRACT §3)."""

    results: list[RunRecord]
    started_at: datetime
    duration_seconds: float
    dry_run: bool
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {s: 0 for s in ("completed", "partial_failure", "failed", "skipped")}
        for r in self.results:
            self.counts[str(r.status)] = self.counts.get(str(r.status), 0) + 1

    @property
    def status(self) -> RunStatus:
        return overall_status([r.status for r in self.results])

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status.is_failure for r in self.results) else 0

    @property
    def failures(self) -> list[dict[str, str]]:
        """What failed, one entry per run (seed 000's "summary of what failed")."""
        return [{"task": r.task, "target": r.target, "status": str(r.status),
                 "message": r.message} for r in self.results if r.status.is_failure]

    def availability(self) -> dict[str, dict[str, Any]]:
        """Per target: could the runs reach it (seed 000's ``postgres_available``)? ``down``
        when a run could not connect, ``locked`` when another process held it, ``up`` when a
        run got through; targets whose runs were all skipped for other reasons are left out."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.results:
            seen = r.details.get("availability") or {}
            status = seen.get("status") or ("up" if r.status is not RunStatus.SKIPPED else None)
            if status is None:
                continue
            entry = out.setdefault(r.target, {"available": True, "status": "up", "errors": []})
            if status != "up" and entry["status"] != "down":
                entry["status"] = status
                entry["available"] = status == "locked"  # in use by its owner: it is there
            if seen.get("error") and seen["error"] not in entry["errors"]:
                entry["errors"].append(seen["error"])
        return out

    def to_json(self) -> dict[str, Any]:
        availability = self.availability()
        return {
            "results": [r.to_json() for r in self.results],
            "summary": {"status": str(self.status), **self.counts, "targets": availability,
                        "errors": [f"{f['task']} on {f['target']}: {f['message']}"
                                   for f in self.failures]},
            "metadata": {"started_at": iso_z(self.started_at),
                         "duration_seconds": round(self.duration_seconds, 3),
                         "dry_run": self.dry_run, "version": __version__},
        }


class Engine:
    """Runs tasks against targets, recording every run in the history store."""

    def __init__(self, settings: Settings, *, registry: Registry | None = None,
                 store: HistoryStore | None = None,
                 middleware: Sequence[Middleware] | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry.default()
        for module in settings.plugins:
            self.registry.load_plugin(module, settings.base_dir)
        self.store = store or HistoryStore(settings.state)
        self.middleware = list(middleware) if middleware is not None else default_chain()
        self._live: dict[str, Run] = {}
        self._live_lock = threading.Lock()

    # --- resolution -----------------------------------------------------------------------------

    def resolve(self, names: Sequence[str] = (), *, all_tasks: bool = False,
                schedule: str | None = None, target: str | None = None,
                target_option: str = "--target") -> list[RunRequest]:
        """Turn command-line names into run requests; UsageError if any name is unknown.
        ``target_option`` is how the caller's user gives a target (the API's body field)."""
        if target is not None and target not in self.settings.targets:
            raise UsageError(f"{target_option}: unknown target {target!r}; defined targets: "
                             + ", ".join(sorted(self.settings.targets)))
        wanted: list[str] = list(names)
        if all_tasks:
            wanted += [n for n in self.settings.tasks if n not in wanted]
        if schedule is not None:
            if schedule not in self.settings.schedules:
                raise UsageError(f"--schedule: unknown schedule {schedule!r}; defined schedules: "
                                 + (", ".join(sorted(self.settings.schedules)) or "(none)"))
            wanted += [n for n in self.settings.schedules[schedule].tasks if n not in wanted]
        if not wanted:
            raise UsageError("name at least one task or kind, or use --all or --schedule")
        return [r for name in wanted
                for r in self._requests(name, target, schedule, target_option)]

    def slot_requests(self, schedule: str, task: str) -> list[RunRequest]:
        """The runs of one of ``schedule``'s tasks for its slot: one per target of the task
        (``resolve(..., schedule=)`` would add the schedule's other tasks as well)."""
        return self._requests(task, None, schedule)

    def kind_request(self, kind: str, target: str, **params: Any) -> RunRequest:
        """A request for a built-in kind with explicit parameters (used by `advise --apply`)."""
        if target not in self.settings.targets:
            raise UsageError(f"unknown target {target!r}; defined targets: "
                             + ", ".join(sorted(self.settings.targets)))
        return RunRequest(task=kind, kind=kind, target=target,
                          params=self.registry.task_class(kind).Params(**params))

    def targets_supporting(self, kind: str) -> list[str]:
        """The targets whose connector offers what ``kind`` requires."""
        requires = self.registry.task_class(kind).requires
        out = []
        for name, target in sorted(self.settings.targets.items()):
            cls = self.registry.connector_class(target.scheme)
            if all(isinstance(cls(name, target), p) for p in requires):
                out.append(name)
        return out

    def _requests(self, name: str, target: str | None, schedule: str | None,
                  target_option: str = "--target") -> list[RunRequest]:
        base, on = task_reference(name, self.settings.tasks)
        if on is not None and base in self.settings.tasks:
            target = self._reference_target(name, self.settings.tasks[base], on, target)
            name = base
        inst = self.settings.tasks.get(name)
        if inst is not None:
            # an instance with `targets` fans out: one independent run per target
            default = self.registry.task_class(inst.kind).default_target
            chosen = [target] if target else inst.runs_on(default)
            if not chosen:
                raise UsageError(f"task {name!r} has no target; give one with {target_option}")
            return [RunRequest(task=name, kind=inst.kind, target=t, params=inst.params,
                               timeout=inst.timeout, lock_wait=inst.lock_wait,
                               schedule=schedule, retries=inst.retries,
                               retry_backoff=inst.retry_backoff, priority=inst.priority)
                    for t in chosen]
        if name in self.registry.tasks:
            target = target or self.registry.task_class(name).default_target
            if target is None:
                choices = ", ".join(sorted(t for t in self.settings.targets if t != HOST_TARGET))
                raise UsageError(f"{name!r} is a task kind; say which target with {target_option} "
                                 f"(defined targets: {choices or HOST_TARGET})")
            params_cls = self.registry.task_class(name).Params
            try:
                params = params_cls()
            except Exception:
                raise UsageError(f"task kind {name!r} has required parameters; declare a task "
                                 f"instance for it in the config (see `wellkept tasks {name}`)"
                                 ) from None
            return [RunRequest(task=name, kind=name, target=target, params=params)]
        known = sorted(self.settings.tasks) + self.registry.task_names()
        raise UsageError(f"unknown task {name!r}; configured tasks and kinds: "
                         + ", ".join(known))

    def _reference_target(self, entry: str, inst: TaskSettings, on: str,
                          target: str | None) -> str:
        """``NAME@TARGET`` runs the instance on that one of its targets."""
        runs_on = inst.runs_on(self.registry.task_class(inst.kind).default_target)
        if on not in runs_on:
            raise UsageError(f"task {inst.name!r} does not run on {on!r}; its targets: "
                             + (", ".join(runs_on) or "(none)"))
        if target is not None and target != on:
            raise UsageError(f"{entry!r} runs on {on!r} only, not on {target!r}")
        return on

    # --- execution ------------------------------------------------------------------------------

    def run(self, requests: Sequence[RunRequest], *, dry_run: bool = False,
            trigger: Trigger = Trigger.MANUAL,
            on_progress: ProgressCallback | None = None) -> RunBatch:
        started, t0 = utcnow(), time.monotonic()
        results = [self.run_one(r, dry_run=dry_run, trigger=trigger, on_progress=on_progress)
                   for r in requests]
        return RunBatch(results=results, started_at=started,
                        duration_seconds=time.monotonic() - t0, dry_run=dry_run)

    def run_one(self, request: RunRequest, *, dry_run: bool = False,
                trigger: Trigger = Trigger.MANUAL,
                on_progress: ProgressCallback | None = None) -> RunRecord:
        task, ctx = self.context_for(request, dry_run=dry_run, trigger=trigger,
                                     on_progress=on_progress)
        ctx.connector.load_driver()  # process start-up, not the run's own time
        task_cls = type(task)
        policy = self.settings.recovery
        run = Run(task=task, ctx=ctx, started_at=utcnow(),
                  timeout=request.timeout or task_cls.default_timeout,
                  lock_wait=request.lock_wait, schedule=request.schedule,
                  lease=policy.lease, retries=request.retries,
                  retry_backoff=request.retry_backoff,
                  priority=self.priority_of(request), scheduled_for=request.scheduled_for,
                  recovery=request.recovery)
        with self._live_lock:
            self._live[ctx.run_id] = run
        try:
            result = self._call(run, 0)
        except (WellkeptError, StoreUnreachable) as exc:
            # the store itself failed (or went away mid-run): the run cannot be recorded
            text = redact(str(exc)) if isinstance(exc, WellkeptError) else \
                f"the state store failed: {redact(str(getattr(exc, 'orig', exc)))}"
            log.error("run of %s could not be recorded: %s", request.task, text)
            result = TaskResult(status=RunStatus.FAILED, message=text, errors=[text])
        finally:
            with self._live_lock:
                self._live.pop(ctx.run_id, None)
            ctx.connector.close()
        return run.record or record_of(run, result)

    def context_for(self, request: RunRequest, *, dry_run: bool = False,
                    trigger: Trigger = Trigger.MANUAL,
                    on_progress: ProgressCallback | None = None) -> tuple[Task, RunContext]:
        """The task and the context a run of ``request`` gets (its connector is not yet
        connected: connectors open on first use)."""
        task_cls = self.registry.task_class(request.kind)
        target = self.settings.targets[request.target]
        connector = self.registry.connector_class(target.scheme)(request.target, target)
        ctx = RunContext(run_id=request.run_id or str(uuid.uuid4()), task_name=request.task,
                         kind=request.kind, target_name=request.target, connector=connector,
                         params=request.params, dry_run=dry_run,
                         trigger=Trigger.RECOVERY if request.recovery else trigger,
                         store=self.store, base_dir=self.settings.base_dir,
                         on_progress=on_progress,
                         attempt=request.recovery.attempt if request.recovery else 1,
                         checkpoint_every=task_cls.checkpoint_every, settings=self.settings,
                         registry=self.registry)
        ctx.extra_details.update(request.details)
        return task_cls(request.params), ctx

    def priority_of(self, request: RunRequest) -> int:
        if request.priority is not None:
            return request.priority
        return self.registry.task_class(request.kind).priority

    def live_runs(self) -> list[Run]:
        """The runs going on in this process now."""
        with self._live_lock:
            return list(self._live.values())

    def record_skipped(self, request: RunRequest, reason: str, *,
                       trigger: Trigger = Trigger.SCHEDULE, dry_run: bool = False) -> RunRecord:
        """Record a run that was not started (its window closed while it waited, or there was
        nothing it could do), so the history shows why it did not happen."""
        now = utcnow()
        record = RunRecord(run_id=request.run_id or str(uuid.uuid4()), task=request.task,
                           kind=request.kind, target=request.target, status=RunStatus.RUNNING,
                           dry_run=dry_run, trigger=trigger, started_at=now,
                           schedule=request.schedule, scheduled_for=request.scheduled_for)
        self.store.start_run(record, request.params.model_dump(mode="json"))
        done = replace(record, status=RunStatus.SKIPPED, finished_at=now,
                       duration_seconds=0.0, message=reason)
        self.store.finish_run(done)
        return done

    def recovery_health(self) -> dict[str, Any]:
        """Seed 004's recovery health figures (queue depth, recent failures, orphaned and
        stuck runs) and metrics (state distribution, 24h success rate, mean recovery time)."""
        from wellkept.history.figures import recovery_health

        return recovery_health(self.store, self.settings.recovery)

    def _call(self, run: Run, index: int) -> TaskResult:
        if index < len(self.middleware):
            return self.middleware[index].handle(run, lambda r: self._call(r, index + 1))
        return _execute(run, self.settings)


def _execute(run: Run, settings: Settings) -> TaskResult:
    """The innermost step: check the target offers what the task needs, take over the work
    of an interrupted run (see wellkept.recovery.continuation), then run the task."""
    connector: Connector = run.ctx.connector
    missing = [p.__name__ for p in run.task.requires if not isinstance(connector, p)]
    if missing:
        raise NotApplicable(f"{run.ctx.kind} does not apply to {connector.name} targets "
                            f"(they are not {', '.join(missing)})")
    # a dry run only reads: it may preview
    if run.task.mutating and run.task.changes_target and not run.ctx.dry_run:
        reason = connector.write_blocker()
        if reason:
            raise Skip(f"{run.ctx.kind} changes the target, but {reason}")
    from wellkept.recovery.continuation import prepare

    # under the target lock (mutating kinds): no other run of this task can be alive now
    done = prepare(run, settings.recovery)
    if done is not None:
        return done
    return run.task.run(run.ctx)
