"""How the API starts runs: through the coordinator of this process, or a pool of its own.

Under ``wellkept serve`` the API shares the process with the coordinator, and every run it
starts is queued in the coordinator's workers (``Coordinator.run_now``): the same engine,
history, leases and target locks as every other run, the same priority bands (an emergency
goes ahead of everything queued), and a graceful shutdown hands queued runs back and stops
running ones at a checkpoint.

An app made by ``create_app(engine)`` without a coordinator (embedded in another ASGI server)
runs them in a worker pool of its own, of ``coordinator.max_concurrent`` threads, through the
same engine: recorded, leased and locked exactly alike, though nothing schedules or recovers
in that process. Either way the run ids are chosen before the runs start, so a POST answers
at once; until a run's row is written, ``pending`` knows it as queued.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from wellkept.clock import Clock, SystemClock
from wellkept.coordinator.jobs import EMERGENCY, REQUEST, RunsJob
from wellkept.coordinator.pool import WorkerPool
from wellkept.types import Trigger

if TYPE_CHECKING:
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine, RunRequest
    from wellkept.executor import Executor
    from wellkept.recovery import Recoverer

#: queued run ids remembered at most (older ones are forgotten first)
PENDING_LIMIT = 10_000


class ShuttingDown(Exception):
    """The process is stopping: no new runs are accepted."""


@dataclass
class _OwnHost:
    """What a RunsJob needs of its host, for an app without a coordinator."""

    engine: Engine
    coordinator_id: str = "api"
    clock: Clock = field(default_factory=SystemClock)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: RunsJob never recovers; the protocol asks for one all the same
    recoverer: Recoverer = field(init=False)
    #: without a coordinator there is no dispatching: the app's own pool runs the engine
    executor: Executor = field(init=False)

    def __post_init__(self) -> None:
        from wellkept.executors.inline import InlineExecutor
        from wellkept.recovery import Recoverer

        self.recoverer = Recoverer(self.engine, claimer=self.coordinator_id)
        self.executor = InlineExecutor(self.engine)


@dataclass(frozen=True)
class Queued:
    run_id: str
    task: str
    target: str


class Launcher:
    """Queues runs for the API and remembers them until they start."""

    def __init__(self, engine: Engine, coordinator: Coordinator | None = None) -> None:
        self.engine = engine
        self.coordinator = coordinator
        self._own: tuple[_OwnHost, WorkerPool] | None = None
        if coordinator is None:
            self._own = (_OwnHost(engine),
                         WorkerPool(engine.settings.coordinator.max_concurrent))
        self._pending: dict[str, Queued] = {}
        self._lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        if self.coordinator is not None:
            return self.coordinator.stopping.is_set()
        assert self._own is not None
        return self._own[0].stopping.is_set()

    def start(self, names: list[str], *, trigger: Trigger = Trigger.API,
              emergency: bool = False, dry_run: bool = False,
              target: str | None = None) -> list[Queued]:
        """Queue runs of ``names``; UsageError when one is unknown (nothing is queued then),
        ShuttingDown when the process is stopping."""
        if self.stopping:
            raise ShuttingDown
        # validates before queueing; a target is the body's "target" field here
        requests = self.engine.resolve(names, target=target, target_option='"target"')
        if self.coordinator is not None:
            ids = self.coordinator.run_now(names, trigger=trigger, emergency=emergency,
                                           dry_run=dry_run, target=target)
        else:
            ids = self._run_own(names, requests, trigger, emergency, dry_run)
        queued = [Queued(i, r.task, r.target) for i, r in zip(ids, requests, strict=True)]
        with self._lock:
            for q in queued:
                self._pending[q.run_id] = q
            while len(self._pending) > PENDING_LIMIT:
                self._pending.pop(next(iter(self._pending)))
        return queued

    def _run_own(self, names: list[str], requests: list[RunRequest], trigger: Trigger,
                 emergency: bool, dry_run: bool) -> list[str]:
        assert self._own is not None
        host, pool = self._own
        with_ids = [replace(r, run_id=str(uuid.uuid4())) for r in requests]
        job = RunsJob(host, f"{trigger} {', '.join(names)}", with_ids,
                      Trigger.EMERGENCY if emergency else trigger, dry_run=dry_run)
        pool.submit(job, EMERGENCY if emergency else REQUEST)
        return job.run_ids

    def pending(self, run_id: str) -> Queued | None:
        """A run queued here whose row is not written yet (the caller found none)."""
        with self._lock:
            return self._pending.get(run_id)

    def started(self, run_id: str) -> None:
        """Its row exists: stop remembering it."""
        with self._lock:
            self._pending.pop(run_id, None)

    def close(self, grace: float = 30.0) -> None:
        """An own pool: stop taking runs, ask running ones to stop at a checkpoint, wait."""
        if self._own is None:
            return
        host, pool = self._own
        host.stopping.set()
        for job in pool.close():
            job.abandon()
        for run in self.engine.live_runs():
            run.ctx.request_stop("the API server is shutting down")
        pool.wait_idle(grace)
