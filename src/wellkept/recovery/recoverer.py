"""Find interrupted runs, queue them, and recover them by priority.

Used by the coordinator (at start and every ``reap_every``) and by ``wellkept recover``. A
running row is interrupted when its lease expired, or when its process is known to be gone
(a process of this host that no longer exists: a coordinator restarted after ``kill -9``
recovers its own runs at once instead of waiting out their leases). It is closed as
``orphaned`` by compare-and-set (exactly one reaper wins), then queued, or ended ``dead`` past
the attempt cap. Each queued entry is claimed by compare-and-set and recovered by a new run
with trigger ``recovery`` that carries a ``RecoverySpec``; the strategy is chosen when that
run starts, under the target lock (see ``continuation``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wellkept.errors import ConfigError, WellkeptError
from wellkept.history import recovery_log
from wellkept.history.recovery_log import QueueEntry, RunState
from wellkept.liveness import process_alive
from wellkept.records import RunRecord, iso_z
from wellkept.recovery.queueing import bury, requeue_or_bury
from wellkept.recovery.spec import RecoverySpec
from wellkept.types import RunStatus, Trigger

if TYPE_CHECKING:
    from wellkept.engine import Engine, RunRequest
    from wellkept.executor import Executor

log = logging.getLogger("wellkept.recovery")


@dataclass
class RecoveryItem:
    """One interrupted run, as ``wellkept recover`` reports it."""

    run_id: str
    task: str
    target: str
    status: str
    reason: str
    detail: str
    priority: int = 0
    progress_percent: float | None = None
    strategy: str | None = None
    strategy_reason: str = ""
    recovery: RunRecord | None = None

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "task": self.task, "target": self.target,
                "status": self.status, "reason": self.reason, "detail": self.detail,
                "priority": self.priority, "progress_percent": self.progress_percent,
                "strategy": self.strategy, "strategy_reason": self.strategy_reason,
                "recovery": self.recovery.to_json() if self.recovery else None}


@dataclass
class RecoveryReport:
    dry_run: bool
    found: list[RecoveryItem] = field(default_factory=list)
    recovered: list[RecoveryItem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a recovery failed or a run ended dead (a dry run: never)."""
        if self.dry_run:
            return 0
        bad = [i for i in self.recovered if i.recovery is None or i.recovery.status.is_failure]
        dead = [i for i in self.found if i.status == str(RunStatus.DEAD)]
        return 1 if bad or dead else 0

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "found": [i.to_json() for i in self.found],
                "recovered": [i.to_json() for i in self.recovered]}


class Recoverer:
    """Recovery of interrupted runs for one process (``claimer`` names it in the queue)."""

    def __init__(self, engine: Engine, claimer: str | None = None,
                 executor: Executor | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.policy = engine.settings.recovery
        self.claimer = claimer or f"cli:{socket.gethostname()}:{os.getpid()}"
        #: where recovery runs execute (the coordinator's: maybe a Celery worker); None runs
        #: them here, in the foreground (`wellkept recover`)
        self.executor = executor

    # --- finding --------------------------------------------------------------------------------

    def interrupted(self, now: datetime) -> list[tuple[RunState, str]]:
        """Running rows whose worker is gone, with why we know."""
        mine = {r.ctx.run_id for r in self.engine.live_runs()}
        out = []
        for run in recovery_log.running(self.store):
            if run.run_id in mine:
                continue
            alive = process_alive(run.host_id or "", run.pid, run.started_at)
            if alive is False:
                why = f"its process (pid {run.pid} on {run.host}) is gone"
            elif run.lease_expired(now, self.policy.lease):
                last = run.lease_until or run.heartbeat_at or run.started_at
                why = f"its lease expired at {iso_z(last)}"
            else:
                continue
            out.append((run, why))
        return out

    def reap(self, now: datetime | None = None, *, dry_run: bool = False) -> list[RecoveryItem]:
        """Close interrupted runs as orphaned and queue them (or bury them as dead)."""
        now = now or datetime.now(UTC)
        found = []
        for run, why in self.interrupted(now):
            if dry_run:
                found.append(self._item(run, "orphaned", why))
                continue
            if not recovery_log.close_interrupted(self.store, run, now, RunStatus.ORPHANED,
                                                  f"orphaned: {why}"):
                continue  # it finished, or another reaper closed it, meanwhile
            recovery_log.close_open_attempts(self.store, run.run_id, now,
                                             str(RunStatus.ORPHANED), why)
            state = recovery_log.get_state(self.store, run.run_id)
            assert state is not None
            if state.dry_run:
                status = RunStatus.ORPHANED  # a dry run changed nothing: nothing to recover
            else:
                status = requeue_or_bury(self.store, state, reason="orphaned", detail=why,
                                         now=now, policy=self.policy,
                                         recoverable=self._recoverable(state))
            log.warning("run %s of %s on %s was interrupted: %s", run.run_id, run.task,
                        run.target, why)
            found.append(self._item(replace(state, status=str(status)), "orphaned", why))
        return found

    def pending(self, now: datetime | None = None) -> list[QueueEntry]:
        """Entries whose backoff passed and that no live recoverer holds, by priority."""
        now = now or datetime.now(UTC)
        return recovery_log.queue(self.store, ready_at=now, unclaimed_at=now)

    # --- recovering -----------------------------------------------------------------------------

    def claim(self, entry: QueueEntry, now: datetime | None = None) -> bool:
        return recovery_log.claim(self.store, entry.run_id, self.claimer,
                                  now or datetime.now(UTC))

    def recover(self, entry: QueueEntry, *,
                on_progress: Callable[[str, float | None, str], None] | None = None,
                before: Callable[[str], None] | None = None) -> RunRecord | None:
        """Recover one claimed entry; the recovery run's record (None when it was buried).
        ``before(run_id)`` is called with the recovery run's id just before it starts."""
        now = datetime.now(UTC)
        state = recovery_log.get_state(self.store, entry.run_id)
        if state is None:  # pruned meanwhile
            recovery_log.dequeue(self.store, entry.run_id)
            return None
        request = self.request_for(state, entry.reason)
        if isinstance(request, str):
            bury(self.store, state, now, request)
            return None
        if before is not None:
            assert request.run_id is not None
            before(request.run_id)
        try:
            if self.executor is not None:
                record = self.executor.run(request, trigger=Trigger.RECOVERY)
            else:
                record = self.engine.run_one(request, trigger=Trigger.RECOVERY,
                                             on_progress=on_progress)
        except WellkeptError:
            recovery_log.release(self.store, entry.run_id, self.claimer)
            raise
        if record.status is RunStatus.RUNNING:
            return record  # going on on a worker; the executor stopped waiting (a shutdown)
        if "recovery" not in record.details:
            self._deferred(state, record, now)
        return record

    def _deferred(self, state: RunState, record: RunRecord, now: datetime) -> None:
        """The recovery run ended before its recovery step (its target was busy, down, or a
        replica): the job is still interrupted. It is tried again later, each time twice as
        late (at most an hour); this does not count toward ``max_attempts``."""
        tries = sum(1 for a in recovery_log.attempts(self.store, run_id=state.run_id)
                    if a["strategy"] == "deferred")
        wait = min(self.policy.backoff * 2 ** tries, timedelta(hours=1))
        recovery_log.start_attempt(
            self.store, run_id=state.run_id, recovery_run_id=record.run_id, task=state.task,
            attempt=state.attempt + 1, strategy="deferred",
            reason=f"it could not start: {record.status}: {record.message}",
            interrupted_at=state.heartbeat_at or state.started_at, started_at=now,
            finished_at=datetime.now(UTC), outcome=str(record.status),
            host=socket.gethostname(), pid=os.getpid())
        recovery_log.postpone(self.store, state.run_id, self.claimer, now + wait)
        log.warning("recovery of run %s deferred by %s: %s", state.run_id, wait, record.message)

    def request_for(self, state: RunState, reason: str) -> RunRequest | str:
        """The run request that continues ``state``'s job, or why there is none."""
        engine = self.engine
        inst = engine.settings.tasks.get(state.task)
        try:
            if inst is not None:
                if inst.kind != state.kind:
                    return f"task {state.task!r} is now of kind {inst.kind!r}, not {state.kind!r}"
                target = state.target if state.target in engine.settings.targets else None
                if target is None:
                    return f"its target {state.target!r} is no longer configured"
                request = engine.resolve([state.task], target=target)[0]
            elif state.task == state.kind and state.kind in engine.registry.tasks:
                if state.target not in engine.settings.targets:
                    return f"its target {state.target!r} is no longer configured"
                request = engine.kind_request(state.kind, state.target, **state.params)
            else:
                return f"task {state.task!r} is no longer configured"
        except (ConfigError, ValueError) as exc:
            return f"it cannot be run again: {exc}"
        spec = RecoverySpec(of=state, reason=reason, claimer=self.claimer,
                            interrupted_at=state.heartbeat_at or state.started_at)
        return replace(request, run_id=str(uuid.uuid4()), recovery=spec,
                       schedule=state.schedule, scheduled_for=state.scheduled_for,
                       priority=state.priority)

    def run(self, *, dry_run: bool = False,
            on_progress: Callable[[str, float | None, str], None] | None = None
            ) -> RecoveryReport:
        """Reap, then recover every ready entry in priority order, one after another."""
        report = RecoveryReport(dry_run=dry_run)
        report.found = self.reap(dry_run=dry_run)
        if dry_run:
            entries = recovery_log.queue(self.store)
            report.recovered = [self.plan(e.run_id, e.reason, e.detail) for e in entries]
            report.recovered += [self.plan(i.run_id, i.reason, i.detail, state_status="running")
                                 for i in report.found]
            return report
        for entry in self.pending():
            if not self.claim(entry):
                continue
            item = self.plan(entry.run_id, entry.reason, entry.detail)
            item.recovery = self.recover(entry, on_progress=on_progress)
            if item.recovery is not None:
                info = item.recovery.details.get("recovery", {})
                item.strategy = info.get("strategy", item.strategy)
                item.strategy_reason = info.get("reason", item.strategy_reason)
            report.recovered.append(item)
        return report

    def plan(self, run_id: str, reason: str, detail: str,
             state_status: str | None = None) -> RecoveryItem:
        """What recovering ``run_id`` would do now (the strategy; nothing runs)."""
        from wellkept.recovery.continuation import preview

        state = recovery_log.get_state(self.store, run_id)
        if state is None:
            return RecoveryItem(run_id, "?", "?", "pruned", reason, detail)
        if state_status:
            state = replace(state, status=state_status)
        item = self._item(state, reason, detail)
        request = self.request_for(state, reason)
        if isinstance(request, str):
            item.strategy, item.strategy_reason = "dead", request
            return item
        task, ctx = self.engine.context_for(request, trigger=Trigger.RECOVERY)
        try:
            decision = preview(task, ctx, state, self.policy)
        finally:
            ctx.connector.close()
        item.strategy, item.strategy_reason = str(decision.strategy), decision.reason
        return item

    def _recoverable(self, state: RunState) -> bool:
        try:
            return self.engine.registry.task_class(state.kind).recoverable
        except ConfigError:
            return True  # unknown kind: request_for buries it with the reason

    @staticmethod
    def _item(state: RunState, reason: str, detail: str) -> RecoveryItem:
        return RecoveryItem(run_id=state.run_id, task=state.task, target=state.target,
                            status=state.status, reason=reason, detail=detail,
                            priority=state.priority, progress_percent=state.progress_percent)
