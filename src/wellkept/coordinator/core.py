"""The coordinator (``wellkept serve``): one process that schedules, recovers and reacts.

Each tick (at the next slot, or every ``coordinator.heartbeat`` at the latest) it renews its
own record, then tries to hold the scheduling leader's lease. Only the leader works: it claims
the slots that came due (exactly once, in the store), picks up requests (``wellkept schedule
trigger``), checks emergency triggers, and every ``reap_every`` finds interrupted runs,
continues unfinished slots of coordinators that died and recovers queued runs. The work goes
to a pool of ``max_concurrent`` workers, which run it through the executor: here (``inline``)
or on Celery workers (``celery``: each pool thread then waits for one run's record). Other
coordinators on the same store wait as hot standbys: when the leader stops renewing its lease
(or is found dead on this host), one of them takes over.

``serve()`` blocks in the calling thread until SIGTERM/SIGINT (or ``request_shutdown``); an
embedding process (the HTTP API, later) may run ``serve(install_signals=False)`` in a thread
and call ``request_shutdown`` itself. Shutdown stops claiming, asks running tasks to stop at
their next checkpoint, gives them ``shutdown_grace``, then cancels what is left, and releases
the leader lease so a standby takes over at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from wellkept import __version__
from wellkept.clock import Clock, SystemClock
from wellkept.coordinator.emergency import EmergencyWatcher
from wellkept.coordinator.jobs import (
    EMERGENCY,
    RECOVERY,
    REQUEST,
    SLOT,
    RecoveryJob,
    RunsJob,
    SlotJob,
    emergency_job,
    request_job,
)
from wellkept.coordinator.pool import WorkerPool
from wellkept.engine import Engine
from wellkept.executor import Executor, make_executor
from wellkept.history import coordination, recovery_log, schedules
from wellkept.history.pruning import prune
from wellkept.liveness import process_alive
from wellkept.records import iso_z
from wellkept.recovery import Recoverer
from wellkept.redact import redact
from wellkept.scheduler import SlotCause, SlotDecision, SlotOutcome, plan
from wellkept.types import RunStatus, Severity, Trigger

log = logging.getLogger("wellkept.coordinator")
PRUNE_EVERY = timedelta(hours=1)
UNWIND_SECONDS = 10.0


class Coordinator:
    """Schedules, recovers and reacts for one config; see the module docstring."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None,
                 coordinator_id: str | None = None, executor: Executor | None = None) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        self.clock: Clock = clock or SystemClock()
        self.coordinator_id = coordinator_id or str(uuid.uuid4())
        self.executor = executor or make_executor(engine)
        self.recoverer = Recoverer(engine, claimer=self.coordinator_id, executor=self.executor)
        self.pool = WorkerPool(self.settings.coordinator.max_concurrent)
        self.emergency = EmergencyWatcher(self.settings, self.store)
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self.is_leader = False
        self._registered = False
        self._next_reap: datetime | None = None
        self._next_prune: datetime | None = None
        self._next_fire: dict[str, datetime | None] = {}
        self._known_tick: datetime | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def serve(self, *, install_signals: bool = True) -> int:
        """Run until asked to stop; 0 after a clean shutdown."""
        if install_signals:
            self._install_signals()
        self.executor.start()  # e.g. an unreachable broker: fail now, with the reason
        self.start()
        try:
            while not self.stopping.is_set():
                try:
                    wake = self.tick()
                except Exception as exc:  # the store went away: degrade, never crash
                    wake = self._tick_failed(exc)
                self._wake.wait(max(0.0, (wake - datetime.now(UTC)).total_seconds()))
                self._wake.clear()
        finally:
            self.shutdown()
        return 0

    def _tick_failed(self, exc: Exception) -> datetime:
        """A tick that could not reach the store: this coordinator cannot know it still leads,
        so it stops scheduling until a tick succeeds again (its running runs stop themselves
        if their leases lapse meanwhile)."""
        retry = self.settings.coordinator.heartbeat
        log.error("coordinator tick failed (%s: %s); trying again in %ss", type(exc).__name__,
                  redact(str(getattr(exc, "orig", exc))).splitlines()[0],
                  retry.total_seconds())
        self.is_leader = False
        return datetime.now(UTC) + retry

    def start(self) -> None:
        if not self._registered:
            coordination.register(self.store, self.coordinator_id, datetime.now(UTC),
                                  __version__)
            self._registered = True
            log.info("coordinator %s started (pid %d on %s), state store %s",
                     self.coordinator_id, os.getpid(), socket.gethostname(),
                     redact(self.store.url))

    def request_shutdown(self, reason: str = "asked to stop") -> None:
        if not self.stopping.is_set():
            log.warning("coordinator %s shutting down: %s", self.coordinator_id, reason)
        self.stopping.set()
        self._wake.set()

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_shutdown(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- one pass -------------------------------------------------------------------------------

    def tick(self) -> datetime:
        """One pass of the loop; returns when the next pass is due (real time)."""
        self.start()
        real_now, now = datetime.now(UTC), self.clock.now()
        heartbeat = self.settings.coordinator.heartbeat
        was_leader = self.is_leader
        self.is_leader = self._lead(real_now)
        if self.is_leader and not was_leader:
            # before our own tick is recorded: when did any scheduler last tick? (the
            # explanation of slots missed while no coordinator was running)
            self._known_tick = coordination.last_tick(self.store)
        coordination.heartbeat(self.store, self.coordinator_id, real_now,
                               ticked=self.is_leader, state="running")
        if not self.is_leader:
            if was_leader:
                log.warning("coordinator %s lost the leader lease", self.coordinator_id)
            return real_now + heartbeat
        if not was_leader:
            log.info("coordinator %s is the scheduling leader", self.coordinator_id)
            self._next_reap = None  # recover at once on becoming leader (and at start)
        if self._next_reap is None or real_now >= self._next_reap:
            self.reap_and_recover(real_now)
            self._next_reap = real_now + self.settings.coordinator.reap_every
        self.schedule(now)
        self.take_requests(now)
        for firing in self.emergency.due(real_now):
            self.pool.submit(emergency_job(self, firing.name, firing.tasks, firing.info),
                             EMERGENCY)
        if self._next_prune is None or real_now >= self._next_prune:
            self._prune(real_now)
            self._next_prune = real_now + PRUNE_EVERY
        return self._next_wake(real_now, now, heartbeat)

    def _next_wake(self, real_now: datetime, now: datetime, heartbeat: timedelta) -> datetime:
        wake = real_now + heartbeat
        upcoming = [f for f in self._next_fire.values() if f is not None]
        if upcoming:
            # the scheduler's clock may run apart from the real one (an injected clock)
            wake = min(wake, real_now + max(timedelta(0), min(upcoming) - now))
        check = self.emergency.next_check()
        if check is not None:
            wake = min(wake, check)
        return wake

    def _lead(self, now: datetime) -> bool:
        ttl = self.settings.coordinator.leader_lease
        current = coordination.get_lease(self.store)
        dead = None
        if current is not None and current.holder != self.coordinator_id \
                and process_alive(current.holder_host_id, current.holder_pid,
                                  current.acquired_at) is False:
            dead = current.holder  # a coordinator of this host that no longer exists
        return coordination.acquire_lease(self.store, self.coordinator_id, now, ttl,
                                          steal_from=dead)

    # --- the leader's work ----------------------------------------------------------------------

    def schedule(self, now: datetime) -> None:
        """Claim the slots that came due and queue their runs."""
        state = schedules.states(self.store)
        for name, sched in self.settings.schedules.items():
            stored = state.get(name)
            spec = self.settings.schedule_spec(name)
            if not sched.enabled:
                # no slots, no records; next_fire_at None marks it, so that once enabled
                # again it starts afresh instead of reporting its disabled time as missed
                self._next_fire[name] = None
                if stored is None or stored.next_fire_at is not None:
                    schedules.advance(self.store, name, now, evaluated_through=now,
                                      next_fire_at=None)
                continue
            cursor = stored.evaluated_through if stored and stored.next_fire_at else None
            paused = bool(stored and stored.paused)
            ticked = max((t for t in (cursor, self._known_tick) if t is not None and t <= now),
                         default=None)
            result = plan(spec, cursor=cursor, now=now, paused=paused, last_tick=ticked)
            if any(d.runs for d in result.decisions) and schedules.in_progress(self.store, name):
                result = plan(spec, cursor=cursor, now=now, paused=paused, busy=True,
                              last_tick=ticked)
            claimed: list[SlotDecision] = []
            for decision in result.decisions:
                if not schedules.claim_slot(self.store, name, decision, now,
                                            self.coordinator_id):
                    continue  # another coordinator recorded this slot
                claimed.append(decision)
                if decision.runs:
                    log.info("schedule %s fires for %s%s", name, decision.slot_at.isoformat(),
                             f" ({decision.detail})" if decision.detail else "")
                    schedules.mark_fired(self.store, name, decision.slot_at, now)
                    self.pool.submit(SlotJob(self, name, decision.slot_at),
                                     SLOT + self._slot_priority(name))
                else:
                    log.log(logging.WARNING if decision.outcome is SlotOutcome.MISSED
                            else logging.INFO, "schedule %s slot %s %s (%s): %s", name,
                            decision.slot_at.isoformat(), decision.outcome, decision.cause,
                            decision.detail)
            self._missed_alert(name, claimed)
            self._next_fire[name] = result.next_fire
            if result.decisions or stored is None or stored.next_fire_at != result.next_fire:
                schedules.advance(self.store, name, now,
                                  evaluated_through=result.evaluated_through,
                                  next_fire_at=result.next_fire)

    def _missed_alert(self, schedule: str, decisions: list[SlotDecision]) -> None:
        """Missed slots raise the ``missed_schedule`` alert (once per cooldown, as every
        alert); the next slot that fires resolves it. Never raises (the alert center logs)."""
        missed = [d for d in decisions if d.outcome is SlotOutcome.MISSED]
        if not missed and not any(d.runs for d in decisions):
            return
        from wellkept.alerts import AlertCenter
        from wellkept.alerts.rules import MISSED_SCHEDULE

        center = AlertCenter(self.settings.alerts, self.store)
        if not missed:
            center.resolve_alert(MISSED_SCHEDULE, schedule, f"schedule {schedule} fires again",
                                 subject=schedule)
            return
        count = sum(d.covers for d in missed)
        last = max(missed, key=lambda d: d.slot_at)
        center.raise_alert(MISSED_SCHEDULE, schedule, Severity.WARNING,
                           f"schedule {schedule} missed {count} slot"
                           f"{'s' if count != 1 else ''}, the last at {iso_z(last.slot_at)} "
                           f"({last.cause}): {last.detail}", value=float(count),
                           subject=schedule)

    def _slot_priority(self, schedule: str) -> int:
        tasks = self.settings.schedules[schedule].tasks
        found = [self.engine.priority_of(r) for r in self.engine.resolve(tasks)]
        return max(found, default=0)

    def take_requests(self, now: datetime) -> None:
        for row in coordination.claim_requests(self.store, self.coordinator_id, now):
            job = request_job(self, row)
            if job is not None:
                self.pool.submit(job, REQUEST)

    def run_now(self, names: list[str], *, trigger: Trigger = Trigger.API,
                emergency: bool = False, dry_run: bool = False,
                target: str | None = None) -> list[str]:
        """Queue task instances (or built-in kinds on ``target``, via ``Engine.resolve``) to
        run at once in this coordinator's workers; their run ids, known before they start
        (the API answers ``{"run_id"}`` at once). ``emergency``: ahead of everything queued.
        UsageError (before anything is queued) when a name is unknown."""
        requests = [replace(r, run_id=str(uuid.uuid4()))
                    for r in self.engine.resolve(names, target=target)]
        job = RunsJob(self, f"{trigger} {', '.join(names)}", requests,
                      Trigger.EMERGENCY if emergency else trigger, dry_run=dry_run)
        self.pool.submit(job, EMERGENCY if emergency else REQUEST)
        return job.run_ids

    def reap_and_recover(self, now: datetime) -> None:
        """Find interrupted runs, continue unfinished slots, queue recoveries."""
        self.executor.upkeep(now)  # e.g. send again the Celery messages a broker lost
        self.recoverer.reap(now)
        self._continue_slots(now)
        for row in coordination.list_coordinators(self.store):
            if row.coordinator_id != self.coordinator_id and row.state != "stopped" \
                    and self._gone(row.coordinator_id, now):
                coordination.orphan_requests(self.store, row.coordinator_id, now)
                coordination.heartbeat(self.store, row.coordinator_id, row.heartbeat_at,
                                       state="stopped")
        for entry in self.recoverer.pending(now):
            if self.recoverer.claim(entry, now):
                self.pool.submit(RecoveryJob(self, entry), RECOVERY + entry.priority)

    def _continue_slots(self, now: datetime) -> None:
        """Unfinished slots whose coordinator is gone (or that a clean shutdown handed
        back) are continued here, unless a newer slot or the grace made them moot."""
        sched_now = self.clock.now()
        for slot in schedules.unfinished_slots(self.store, self.coordinator_id):
            holder = slot["claimed_by"]
            if holder is not None and not self._gone(holder, now):
                continue
            name, slot_at = slot["schedule"], slot["slot_at"]
            if holder is not None:
                coordination.orphan_requests(self.store, holder, now)
            if not schedules.take_over_slot(self.store, name, slot_at, holder,
                                            self.coordinator_id):
                continue
            sched = self.settings.schedules.get(name)
            if sched is None or not self._still_worth_running(name, slot_at, sched_now):
                schedules.slot_outcome(self.store, name, slot_at, sched_now,
                                       SlotOutcome.MISSED, str(SlotCause.SHUTDOWN),
                                       "its coordinator stopped before the slot's runs ended, "
                                       "and a newer slot or its grace made it moot")
                continue
            log.warning("continuing schedule %s slot %s, left unfinished by %s", name,
                        slot_at.isoformat(), f"coordinator {holder}" if holder
                        else "a coordinator that shut down")
            job = SlotJob(self, name, slot_at, continuing=True)
            job.claim_recoveries()
            self.pool.submit(job, SLOT + self._slot_priority(name))

    def _gone(self, coordinator_id: str, now: datetime) -> bool:
        """Whether a coordinator stopped, went silent, or is a dead process of this host."""
        row = coordination.get_coordinator(self.store, coordinator_id)
        if row is None or not row.alive(now, self.settings.coordinator.leader_lease):
            return True
        return process_alive(row.host_id, row.pid, row.started_at) is False

    def _still_worth_running(self, name: str, slot_at: datetime, now: datetime) -> bool:
        sched = self.settings.schedules[name]
        newer = [s for s in schedules.list_slots(self.store, schedule=name, since=slot_at,
                                                 limit=2) if s["slot_at"] > slot_at]
        return not newer and (sched.catch_up or now - slot_at <= sched.grace)

    def _prune(self, now: datetime) -> None:
        counts = prune(self.store, now - self.settings.recovery.retention)
        if any(counts.values()):
            log.info("pruned records older than %s: %s", self.settings.recovery.retention,
                     ", ".join(f"{n} {k}" for k, n in counts.items() if n))

    # --- shutdown -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop claiming; let running tasks reach a checkpoint or finish within the grace
        period; cancel what is left; release the leader lease."""
        self.stopping.set()
        if not self._registered:
            return
        try:
            coordination.heartbeat(self.store, self.coordinator_id, datetime.now(UTC),
                                   state="stopping")
        except Exception as exc:  # the store is away: stop the runs all the same
            log.error("cannot record the shutdown in the state store: %s", exc)
        for job in self.pool.close():
            try:
                job.abandon()
            except Exception as exc:
                log.error("cannot hand back %s: %s", job.label, exc)
        for run in self.engine.live_runs():
            run.ctx.request_stop("the coordinator is shutting down")
        self.executor.close()  # runs on Celery workers go on; stop waiting for them
        grace = self.settings.coordinator.shutdown_grace.total_seconds()
        if not self.pool.wait_idle(grace):
            for run in self.engine.live_runs():
                run.ctx.cancel(f"the coordinator is shutting down: the grace period of "
                               f"{grace:g}s is over")
                run.ctx.connector.interrupt()
            if not self.pool.wait_idle(UNWIND_SECONDS):
                self._orphan_hung_runs()
        now = datetime.now(UTC)
        try:
            coordination.release_lease(self.store, self.coordinator_id, now)
            coordination.heartbeat(self.store, self.coordinator_id, now, state="stopped")
        except Exception as exc:  # its lease lapses by itself
            log.error("cannot release the leader lease: %s", exc)
        self.is_leader = False
        log.info("coordinator %s stopped", self.coordinator_id)

    def _orphan_hung_runs(self) -> None:
        """Runs that ignored even cancellation: close them and queue them, since this
        process is about to exit under them."""
        now = datetime.now(UTC)
        for run in self.engine.live_runs():
            state = recovery_log.get_state(self.store, run.ctx.run_id)
            if state is None or state.status != str(RunStatus.RUNNING):
                continue
            why = "it did not stop within the coordinator's shutdown grace period"
            if recovery_log.close_interrupted(self.store, state, now, RunStatus.ORPHANED,
                                              f"orphaned: {why}"):
                closed = recovery_log.get_state(self.store, state.run_id)
                assert closed is not None
                from wellkept.recovery.queueing import requeue_or_bury

                requeue_or_bury(self.store, closed, reason="shutdown", detail=why, now=now,
                                policy=self.settings.recovery,
                                recoverable=run.task.recoverable, counts=False)

    # --- for status and embedding ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        running, queued = self.pool.labels()
        return {"id": self.coordinator_id, "leader": self.is_leader,
                "stopping": self.stopping.is_set(), "jobs_running": running,
                "jobs_queued": queued, "executor": self.executor.snapshot()}
