"""The coordinator's jobs: a schedule slot's runs, a recovery, a request, an emergency.

Every job runs its tasks through the engine, so every run is recorded, leased, retried,
locked and recoverable exactly like ``wellkept run``'s. A slot's tasks run in the schedule's
order. A slot job stopped by a shutdown between two tasks hands the slot back unfinished, and
the next coordinator continues it where it stopped (``continue_slot``): tasks that finished
are not run again, an interrupted one is recovered from its checkpoint, the rest run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from wellkept.clock import Clock
from wellkept.history import coordination, recovery_log, schedules
from wellkept.history.recovery_log import QueueEntry
from wellkept.records import RunRecord, iso_z
from wellkept.scheduler import SlotCause, SlotOutcome
from wellkept.types import RunStatus, Trigger, overall_status

if TYPE_CHECKING:
    from wellkept.engine import Engine
    from wellkept.recovery import Recoverer

log = logging.getLogger("wellkept.coordinator")

#: the pool's priority bands: emergencies first, then recoveries, requests, slots; a task's
#: own priority (0-10) orders jobs within a band
EMERGENCY, RECOVERY, REQUEST, SLOT = 400, 300, 200, 100


class JobHost(Protocol):
    """What a job needs of the coordinator that runs it."""

    engine: Engine
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
        self._done: dict[str, Any] = {}
        self._claimed: dict[str, QueueEntry] = {}

    def claim_recoveries(self) -> None:
        """Continuing a slot: claim now the recovery of its interrupted runs, so that they are
        recovered in the schedule's order, by this job, rather than by the queue."""
        store = self.host.engine.store
        self._done = _slot_runs(store, self.schedule, self.slot_at)
        for task, state in self._done.items():
            entry = recovery_log.entry(store, state.run_id)
            if entry is not None and self.host.recoverer.claim(entry):
                self._claimed[task] = entry

    def abandon(self) -> None:
        schedules.release_slot(self.host.engine.store, self.schedule, self.slot_at)
        for entry in self._claimed.values():
            recovery_log.release(self.host.engine.store, entry.run_id,
                                 self.host.recoverer.claimer)

    def run(self) -> None:
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
                    request = engine.resolve([rest], schedule=self.schedule)[0]
                    statuses.append(engine.record_skipped(
                        replace(request, scheduled_for=self.slot_at), reason).status)
                break
            record = self._one(task)
            if record is not None:
                statuses.append(record.status)
        schedules.slot_finished(store, self.schedule, self.slot_at, host.clock.now(),
                                str(overall_status(statuses)))

    def _one(self, task: str) -> RunRecord | None:
        host, engine = self.host, self.host.engine
        store = engine.store
        entry = self._claimed.pop(task, None)
        if entry is not None:  # interrupted: recovered here, in order
            return host.recoverer.recover(entry, before=lambda run_id: schedules.slot_add_run(
                store, self.schedule, self.slot_at, run_id))
        previous = self._done.get(task)
        if previous is not None:
            if previous.status in (str(RunStatus.RUNNING), str(RunStatus.ORPHANED)):
                return None  # being recovered elsewhere: not waited for
            return _as_done(previous)  # it ended before the interruption
        request = replace(engine.resolve([task], schedule=self.schedule)[0],
                          scheduled_for=self.slot_at, run_id=str(uuid.uuid4()))
        assert request.run_id is not None
        schedules.slot_add_run(store, self.schedule, self.slot_at, request.run_id)
        return engine.run_one(request, trigger=Trigger.SCHEDULE)


def _slot_runs(store: Any, schedule: str, slot_at: datetime) -> dict[str, Any]:
    """The runs a slot already has, by task (the newest for each)."""
    row = schedules.get_slot(store, schedule, slot_at)
    ids = row["run_ids"] if row else []
    found: dict[str, Any] = {}
    for run_id in ids:
        state = recovery_log.get_state(store, run_id)
        if state is not None:
            found[state.task] = state
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


class RequestJob:
    """Work asked of this coordinator from outside (``wellkept schedule trigger``)."""

    def __init__(self, host: JobHost, request: dict[str, Any]) -> None:
        self.host, self.request = host, request
        self.label = f"{request['kind']} {request['name']} ({request['trigger']})"

    def abandon(self) -> None:
        coordination.unclaim_request(self.host.engine.store, self.request["id"],
                                     self.host.coordinator_id)

    def run(self) -> None:
        engine, req = self.host.engine, self.request
        trigger = Trigger(req["trigger"])
        names = ([] if req["kind"] == "schedule" else [req["name"]])
        schedule = req["name"] if req["kind"] == "schedule" else None
        records: list[RunRecord] = []
        for request in engine.resolve(names, schedule=schedule):
            if self.host.stopping.is_set():
                break
            records.append(engine.run_one(request, trigger=trigger))
        coordination.finish_request(engine.store, req["id"], self.host.clock.now(),
                                    str(overall_status([r.status for r in records])),
                                    [r.run_id for r in records])


class EmergencyJob:
    """The tasks of an emergency trigger whose condition held."""

    def __init__(self, host: JobHost, name: str, tasks: list[str],
                 info: dict[str, Any]) -> None:
        self.host, self.name, self.tasks, self.info = host, name, tasks, info
        self.label = f"emergency {name}"

    def abandon(self) -> None:
        log.warning("emergency %s was not run: the coordinator stopped first", self.name)

    def run(self) -> None:
        engine = self.host.engine
        ids = []
        for request in engine.resolve(self.tasks):
            if self.host.stopping.is_set():
                break
            record = engine.run_one(replace(request, details={"emergency": self.info}),
                                    trigger=Trigger.EMERGENCY)
            ids.append(record.run_id)
        coordination.emergency_fired(engine.store, self.name, ids)
