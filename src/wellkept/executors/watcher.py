"""One thread that tells the coordinator's waiting jobs when their Celery runs ended.

Each job that sent a run waits on an event; the watcher looks up every awaited run in one
query (``dispatches.ended``): woken at once by the worker's ``NOTIFY`` on a PostgreSQL store,
and every ``POLL_SECONDS`` regardless, which also catches runs that ended without their worker
(found orphaned by the reaper). Recoveries waiting on the queue keep their claim on the
recovery queue entry fresh, so no second recoverer takes them while they wait for a worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wellkept.history import dispatches, recovery_log
from wellkept.history.dispatches import CHANNEL
from wellkept.history.store import HistoryStore
from wellkept.redact import redact

log = logging.getLogger("wellkept.executor")

POLL_SECONDS = 0.5
REFRESH_CLAIMS_SECONDS = 60.0


@dataclass
class Waiter:
    run_id: str
    #: for a recovery: the interrupted run whose queue entry ``claimer`` holds
    recovering: str | None = None
    claimer: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    detached: bool = False

    def wait(self) -> bool:
        """Block until the run ended (True) or the watcher closed (False)."""
        self.done.wait()
        return not self.detached


class DispatchWatcher:
    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._waiters: dict[str, Waiter] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshed = time.monotonic()

    def watch(self, run_id: str, *, recovering: str | None = None,
              claimer: str | None = None) -> Waiter:
        waiter = Waiter(run_id, recovering, claimer)
        with self._lock:
            if self._closed.is_set():
                waiter.detached = True
                waiter.done.set()
                return waiter
            self._waiters[run_id] = waiter
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="wellkept-dispatch-watcher")
                self._thread.start()
        self._wake.set()
        return waiter

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    def close(self) -> None:
        """Release every waiter (detached): the runs go on without us."""
        with self._lock:
            self._closed.set()
            left = list(self._waiters.values())
            self._waiters.clear()
        for waiter in left:
            waiter.detached = True
            waiter.done.set()
        self._wake.set()

    # --- the thread -----------------------------------------------------------------------------

    def _loop(self) -> None:
        wakes = self._notifications()
        while not self._closed.is_set():
            try:
                self._check()
            except Exception as exc:  # the store is away: keep the waiters, try again
                log.warning("cannot look up dispatched runs: %s",
                            redact(str(getattr(exc, "orig", exc))).splitlines()[0])
                time.sleep(POLL_SECONDS)
            if wakes is not None:
                try:
                    next(wakes)
                    continue
                except Exception:  # the listening connection broke: fall back to polling
                    wakes = None
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _check(self) -> None:
        with self._lock:
            ids = list(self._waiters)
        if not ids:
            return
        for run_id in dispatches.ended(self.store, ids):
            with self._lock:
                waiter = self._waiters.pop(run_id, None)
            if waiter is not None:
                waiter.done.set()
        if time.monotonic() - self._refreshed >= REFRESH_CLAIMS_SECONDS:
            self._refreshed = time.monotonic()
            self._refresh_claims()

    def _refresh_claims(self) -> None:
        with self._lock:
            held: dict[str, list[str]] = {}
            for w in self._waiters.values():
                if w.recovering and w.claimer:
                    held.setdefault(w.claimer, []).append(w.recovering)
        now = datetime.now(UTC)
        for claimer, run_ids in held.items():
            recovery_log.refresh_claims(self.store, claimer, run_ids, now)

    def _notifications(self) -> Iterator[None] | None:
        """Wake-ups from the workers' NOTIFY on a PostgreSQL store: each ``next()`` returns
        after a notification or ``POLL_SECONDS``; None where there is no such thing."""
        if self.store.is_sqlite:
            return None
        try:
            import psycopg

            url = self.store.engine.url.set(drivername="postgresql")
            conn = psycopg.connect(url.render_as_string(hide_password=False),
                                   autocommit=True, connect_timeout=10,
                                   application_name="wellkept-dispatch-watcher")
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:
            log.warning("cannot listen for finished runs (%s); polling every %ss",
                        redact(str(exc)).splitlines()[0], POLL_SECONDS)
            return None

        def wakes() -> Iterator[None]:
            try:
                while not self._closed.is_set():
                    # drain what arrived together, then one look-up for all of it
                    for _ in conn.notifies(timeout=POLL_SECONDS, stop_after=1):
                        pass
                    yield None
            finally:
                conn.close()

        return wakes()
