"""The coordinator's workers: at most ``max_concurrent`` jobs at once, highest priority first.

A job is a callable unit (a schedule slot's runs, a recovery, an emergency, a request). Jobs
wait in a priority queue (emergencies ahead of everything, then recoveries, requests, slots;
equal priorities in arrival order). Worker threads are started on demand and stay for the
pool's life; an idle pool costs no CPU (its threads block on a condition).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Protocol

log = logging.getLogger("wellkept.coordinator")


class Job(Protocol):
    """A unit of work for the pool."""

    label: str

    def run(self) -> None:
        """Do the work (in a worker thread)."""

    def abandon(self) -> None:
        """The pool shut down before the job started: hand its claim back."""


class WorkerPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._active: dict[int, str] = {}
        self._closed = False

    def submit(self, job: Job, priority: int) -> None:
        with self._cond:
            if self._closed:
                job.abandon()
                return
            heapq.heappush(self._heap, (-priority, next(self._seq), job))
            idle = len(self._threads) - len(self._active)
            if idle < len(self._heap) and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"wellkept-worker-{len(self._threads) + 1}")
                self._threads.append(thread)
                thread.start()
            self._cond.notify()

    @property
    def active(self) -> int:
        with self._cond:
            return len(self._active)

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._heap)

    def labels(self) -> tuple[list[str], list[str]]:
        """(running jobs, queued jobs), for status."""
        with self._cond:
            queued = [job for _, _, job in sorted(self._heap, key=lambda e: e[:2])]
            return list(self._active.values()), [job.label for job in queued]

    def close(self) -> list[Job]:
        """Stop taking jobs; the queued ones, which will not start, are returned."""
        with self._cond:
            self._closed = True
            left = [job for _, _, job in sorted(self._heap, key=lambda e: e[:2])]
            self._heap.clear()
            self._cond.notify_all()
        return left

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._active:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 1.0)
        return True

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._active[me] = job.label
            try:
                job.run()
            except Exception:  # one job's bug must not kill the worker
                log.exception("job %s failed", job.label)
            finally:
                with self._cond:
                    self._active.pop(me, None)
                    self._cond.notify_all()
