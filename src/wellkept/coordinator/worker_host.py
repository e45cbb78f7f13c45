"""A schedule slot run outside the coordinator: by a Celery worker that a team's own beat
asked (``wellkept.fire_schedule``).

The slot's tasks run through the same ``SlotJob`` as the coordinator's (in order, within the
schedule's window, recorded in ``wk_schedule_slots``), in this process: the worker is where
the work is done. While it runs, the worker keeps a coordinator record alive in the store, so
a coordinator sharing the store does not take the slot for abandoned and continue it too.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from wellkept import __version__
from wellkept.clock import Clock, SystemClock
from wellkept.coordinator.jobs import SlotJob
from wellkept.engine import Engine
from wellkept.executor import Executor
from wellkept.executors.inline import InlineExecutor
from wellkept.history import coordination
from wellkept.recovery import Recoverer


class WorkerHost:
    """What a ``SlotJob`` needs (see ``jobs.JobHost``), for a worker process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.executor: Executor = InlineExecutor(engine)
        self.clock: Clock = SystemClock()
        self.coordinator_id = str(uuid.uuid4())
        self.recoverer = Recoverer(engine, claimer=self.coordinator_id)
        self.stopping = threading.Event()

    def run_slot(self, schedule: str, slot_at: datetime) -> None:
        store, every = self.engine.store, self.engine.settings.coordinator.heartbeat
        coordination.register(store, self.coordinator_id, datetime.now(UTC), __version__)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every.total_seconds()):
                coordination.heartbeat(store, self.coordinator_id, datetime.now(UTC))

        thread = threading.Thread(target=beat, daemon=True, name="wellkept-slot-heartbeat")
        thread.start()
        try:
            SlotJob(self, schedule, slot_at).run()
        finally:
            done.set()
            thread.join(5)
            coordination.heartbeat(store, self.coordinator_id, datetime.now(UTC),
                                   state="stopped")
