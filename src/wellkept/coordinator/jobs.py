"""The coordinator's jobs: a schedule slot's runs, a recovery, a request, an emergency.

Every job runs its tasks through the coordinator's executor (in this process, or on a Celery
worker) and so through the engine: every run is recorded, leased, retried, locked and
recoverable exactly like ``wellkept run``'s. A slot's tasks run in the schedule's
order. A slot job stopped by a shutdown between two tasks hands the slot back unfinished, and
the next coordinator continues it where it stopped (``continue_slot``): tasks that finished
are not run again, an interrupted one is recovered from its checkpoint, the rest run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from wellkept.clock import Clock
from wellkept.errors import WellkeptError
from wellkept.history import coordination, dispatches, recovery_log, schedules
from wellkept.history.recovery_log import QueueEntry
from wellkept.records import RunRecord, iso_z
from wellkept.scheduler import SlotCause, SlotOutcome
from wellkept.types import RunStatus, Trigger, overall_status

if TYPE_CHECKING:
    from wellkept.engine import Engine, RunRequest
    from wellkept.executor import Executor
    from wellkept.recovery import Recoverer

log = logging.getLogger("wellkept.coordinator")

#: the pool's priority bands: emergencies first, then recoveries, requests, slots; a task's
#: own priority (0-10) orders jobs within a band
EMERGENCY, RECOVERY, REQUEST, SLOT = 400, 300, 200, 100


class JobHost(Protocol):
    """What a job needs of the coordinator that runs it."""

    engine: Engine
    executor: Executor
    clock: Clock
    coordinator_id: str
    recoverer: Recoverer
    stopping: threading.Event


class SlotJob:
    """The runs of one claimed (schedule, slot)."""

    def __init__(self, host: JobHost, schedule: str, slot_at: datetime,
                 continuing: bool = False) -> None:
        self.host, self.schedule, self.slot_at, self.continuing = host, schedule, slot_at, \
            continuing
        self.label = f"schedule {schedule} slot {iso_z(slot_at)}"
        self._done: dict[tuple[str, str], Any] = {}
        self._claimed: dict[tuple[str, str], QueueEntry] = {}

    def claim_recoveries(self) -> None:
        """Continuing a slot: claim now the recovery of its interrupted runs, so that they are
        recovered in the schedule's order, by this job, rather than by the queue."""
        store = self.host.engine.store
        self._done = _slot_runs(store, self.schedule, self.slot_at)
        for key, state in self._done.items():
            entry = recovery_log.entry(store, state.run_id)
            if entry is not None and self.host.recoverer.claim(entry):
                self._claimed[key] = entry

    def abandon(self) -> None:
        schedules.release_slot(self.host.engine.store, self.schedule, self.slot_at)
        self._release_claims()

    def _release_claims(self) -> None:
        for entry in self._claimed.values():
            recovery_log.release(self.host.engine.store, entry.run_id,
                                 self.host.recoverer.claimer)
        self._claimed.clear()

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            # a bug must not leave the slot 'in progress' for ever (every later slot would be
            # skipped as an overlap)
            log.exception("%s failed", self.label)
            schedules.slot_finished(self.host.engine.store, self.schedule, self.slot_at,
                                    self.host.clock.now(), str(RunStatus.FAILED))
        finally:
            self._release_claims()  # the recoveries it did not reach go back to the queue

    def _run(self) -> None:
        host, engine = self.host, self.host.engine
        store = engine.store
        settings = engine.settings.schedules.get(self.schedule)
        if settings is None:
            schedules.slot_outcome(store, self.schedule, self.slot_at, host.clock.now(),
                                   SlotOutcome.SKIPPED, "removed",
                                   "the schedule is no longer in the config")
            return
        spec = engine.settings.schedule_spec(self.schedule)
        now = host.clock.now()
        if spec.window is not None and not spec.window.contains(now, spec.timezone):
            schedules.slot_outcome(store, self.schedule, self.slot_at, now, SlotOutcome.SKIPPED,
                                   str(SlotCause.OUTSIDE_WINDOW),
                                   f"it waited until {iso_z(now)}, and the window "
                                   f"{spec.window.text} had closed")
            return
        schedules.slot_started(store, self.schedule, self.slot_at, now, host.coordinator_id)
        statuses: list[RunStatus] = []
        for position, task in enumerate(settings.tasks):
            if host.stopping.is_set():
                # the next coordinator continues this slot from here
                schedules.release_slot(store, self.schedule, self.slot_at)
                return
            now = host.clock.now()
            if spec.window is not None and not spec.window.contains(now, spec.timezone):
                reason = (f"not started: the maintenance window {spec.window.text} of schedule "
                          f"{self.schedule} closed at {iso_z(now)}")
                for rest in settings.tasks[position:]:
                    for request in engine.slot_requests(self.schedule, rest):
                        statuses.append(engine.record_skipped(
                            replace(request, scheduled_for=self.slot_at), reason).status)
                break
            # a task with `targets` is one run per target, each recovered on its own
            for request in engine.slot_requests(self.schedule, task):
                record = self._one(request)
                if record is not None and record.status is RunStatus.RUNNING:
                    # the executor stopped waiting (a shutdown) while the run goes on on a
                    # worker: the next coordinator continues the slot and sees its end
                    schedules.release_slot(store, self.schedule, self.slot_at)
                    return
                if record is not None:
                    statuses.append(record.status)
        schedules.slot_finished(store, self.schedule, self.slot_at, host.clock.now(),
                                str(overall_status(statuses)))

    def _one(self, request: RunRequest) -> RunRecord | None:
        host, engine = self.host, self.host.engine
        store = engine.store
        key = (request.task, request.target)
        entry = self._claimed.pop(key, None)
        if entry is not None:  # interrupted: recovered here, in order
            return host.recoverer.recover(entry, before=lambda run_id: schedules.slot_add_run(
                store, self.schedule, self.slot_at, run_id))
        previous = self._done.get(key)
        if previous is not None:
            if previous.status in (str(RunStatus.RUNNING), str(RunStatus.ORPHANED)):
                return None  # being recovered elsewhere: not waited for
            return _as_done(previous)  # it ended before the interruption
        request = replace(request, scheduled_for=self.slot_at, run_id=str(uuid.uuid4()))
        assert request.run_id is not None
        schedules.slot_add_run(store, self.schedule, self.slot_at, request.run_id)
        return host.executor.run(request, trigger=Trigger.SCHEDULE)


@dataclass(frozen=True)
class _Sent:
    """A slot's run sent to a Celery worker that has not started it yet (its dispatch is
    still queued or claimed): it will run, so a continuing slot must not send it again."""

    run_id: str
    status: str = str(RunStatus.RUNNING)


def _slot_runs(store: Any, schedule: str, slot_at: datetime) -> dict[tuple[str, str], Any]:
    """The runs a slot already has, by task and target (the newest for each)."""
    row = schedules.get_slot(store, schedule, slot_at)
    ids = row["run_ids"] if row else []
    found: dict[tuple[str, str], Any] = {}
    for run_id in ids:
        state = recovery_log.get_state(store, run_id)
        if state is not None:
            found[(state.task, state.target)] = state
            continue
        sent = dispatches.get(store, run_id)
        if sent is not None and sent.status != dispatches.FINISHED:
            log.info("schedule %s slot %s: run %s of %s was sent before and waits for a "
                     "worker; not sent again", schedule, iso_z(slot_at), run_id, sent.task)
            found[(sent.task, sent.target)] = _Sent(run_id)
    return found


def _as_done(state: Any) -> RunRecord:
    return RunRecord(run_id=state.run_id, task=state.task, kind=state.kind, target=state.target,
                     status=RunStatus(state.status), dry_run=state.dry_run,
                     trigger=Trigger(state.trigger), started_at=state.started_at)


class RecoveryJob:
    """Recover one interrupted run (its queue entry is already claimed)."""

    def __init__(self, host: JobHost, entry: QueueEntry) -> None:
        self.host, self.entry = host, entry
        self.label = f"recover {entry.task} run {entry.run_id[:8]}"

    def abandon(self) -> None:
        recovery_log.release(self.host.engine.store, self.entry.run_id, self.host.recoverer.claimer)

    def run(self) -> None:
        self.host.recoverer.recover(self.entry)


class RunsJob:
    """Runs of task instances, one after another, with a trigger (a request from outside, an
    emergency, the HTTP API). ``done`` is called with the records when they end; ``abandoned``
    when a shutdown came before the job started."""

    def __init__(self, host: JobHost, label: str, requests: list[RunRequest], trigger: Trigger,
                 done: Callable[[list[RunRecord]], None] | None = None,
                 abandoned: Callable[[], None] | None = None, *, dry_run: bool = False) -> None:
        self.host, self.label, self.requests, self.trigger = host, label, requests, trigger
        self._done, self._abandoned, self.dry_run = done, abandoned, dry_run

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.requests if r.run_id]

    def abandon(self) -> None:
        if self._abandoned is not None:
            self._abandoned()
        else:
            log.warning("%s was not run: the coordinator stopped first", self.label)

    def run(self) -> None:
        records = []
        for request in self.requests:
            if self.host.stopping.is_set():
                break
            records.append(self.host.executor.run(request, trigger=self.trigger,
                                                  dry_run=self.dry_run))
        if any(r.status is RunStatus.RUNNING for r in records):
            # still going on a worker when this coordinator stopped: its request is left
            # claimed, and the next coordinator ends it as orphaned (never runs it again)
            log.warning("%s: stopped waiting for its runs (the coordinator is stopping)",
                        self.label)
            return
        if self._done is not None:
            self._done(records)


def request_job(host: JobHost, row: dict[str, Any]) -> RunsJob | None:
    """The job for a request from ``wk_requests`` (``wellkept schedule trigger``); None when
    it cannot be run (it is finished as failed at once)."""
    store = host.engine.store
    try:
        names = [] if row["kind"] == "schedule" else [row["name"]]
        requests = host.engine.resolve(names, schedule=row["name"] if not names else None)
    except WellkeptError as exc:  # e.g. the schedule is no longer in the config
        log.error("request %s (%s %s) cannot run: %s", row["id"], row["kind"], row["name"], exc)
        coordination.finish_request(store, row["id"], host.clock.now(), str(RunStatus.FAILED),
                                    [])
        return None

    def done(records: list[RunRecord]) -> None:
        coordination.finish_request(store, row["id"], host.clock.now(),
                                    str(overall_status([r.status for r in records])),
                                    [r.run_id for r in records])

    return RunsJob(host, f"{row['kind']} {row['name']} ({row['trigger']})", requests,
                   Trigger(row["trigger"]), done,
                   lambda: coordination.unclaim_request(store, row["id"], host.coordinator_id))


def emergency_job(host: JobHost, name: str, tasks: list[str], info: dict[str, Any]) -> RunsJob:
    """The tasks of an emergency trigger whose condition held, with what it saw."""
    requests = [replace(r, details={"emergency": info}) for r in host.engine.resolve(tasks)]

    def done(records: list[RunRecord]) -> None:
        coordination.emergency_fired(host.engine.store, name, [r.run_id for r in records])

    return RunsJob(host, f"emergency {name}", requests, Trigger.EMERGENCY, done)
