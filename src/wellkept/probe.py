"""Ping every target at once, each bounded by its own timeout; never raises.

Each check runs in a daemon thread. The caller waits for each one only until that target's
timeout has passed since the start, so a target whose address swallows packets costs its own
timeout and no more, and cannot keep the process alive after the answer is printed. (The
driver's own connect timeout is the same figure, but it starts only once the driver is
imported and the address resolved, so the wait, not the driver, is what bounds the check.)

Nothing here logs: the caller decides what a result is worth saying (health logs a
change of state once, not every check).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from wellkept.config import Settings
from wellkept.errors import ConnectorError, Locked, WellkeptError
from wellkept.redact import redact
from wellkept.registry import Registry


def ping_target(name: str, settings: Settings, registry: Registry, *,
                health: bool = False) -> dict[str, Any]:
    """One target's row: status ``up``/``locked``/``down``, latency, version, error, details.

    ``problem`` says why it is down: ``unreachable`` (an expected outage), ``unusable``
    (reached, but wellkept cannot check it: a missing driver) or ``bug`` (a connector
    crashed; ``traceback`` holds where)."""
    target = settings.targets[name]
    row: dict[str, Any] = {"target": name, "url": target.redacted_url, "status": "down",
                           "latency_ms": None, "version": "", "error": None, "details": {}}
    t0 = time.perf_counter()
    try:
        connector = registry.connector_class(target.scheme)(name, target)
    except Exception as exc:  # a plugin that cannot even be built is still just one row
        return _failed(row, exc, t0)
    try:
        ping = connector.health() if health else connector.ping()
    except Locked as exc:  # some engines say so by raising rather than in the ping
        row.update(status="locked", latency_ms=round((time.perf_counter() - t0) * 1000, 2),
                   error=_one_line(str(exc)), details={"locked": True,
                                                    "holder_pid": exc.holder_pid})
    except Exception as exc:
        _failed(row, exc, t0)
    else:
        row.update(status="locked" if ping.details.get("locked") else "up",
                   latency_ms=round(ping.latency_ms, 2), version=ping.version,
                   details=dict(ping.details))
    finally:
        # closing a half-open connection may fail; the ping result stands
        with contextlib.suppress(Exception):
            connector.close()
    return row


def _one_line(text: str) -> str:
    """Drivers add hints on further lines ("Is the server running…"); one line reads better
    in a table, a log line and an alert."""
    return " ".join(redact(text).split())


def _failed(row: dict[str, Any], exc: BaseException, t0: float) -> dict[str, Any]:
    if isinstance(exc, ConnectorError):
        row["problem"] = "unreachable"
        row["error"] = _one_line(str(exc))
    elif isinstance(exc, WellkeptError):
        row["problem"] = "unusable"
        row["error"] = _one_line(str(exc))
    else:  # a bug in a connector must not hide the other targets
        row["problem"] = "bug"
        row["error"] = _one_line(f"{type(exc).__name__}: {exc}")
        row["traceback"] = redact(traceback.format_exc())
    row["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return row


Jobs = dict[str, tuple[Callable[[], Any], float]]
OnTimeout = Callable[[str, float], Any]


class Bounded:
    """Jobs running, each in its own daemon thread, since ``started`` (monotonic seconds).

    Started early, they go on while the caller does other work (``wellkept health`` loads the
    history store meanwhile); ``collect`` then waits only for what is left of each limit, and
    puts ``on_timeout(name, limit)`` in place of a job still running then."""

    def __init__(self, jobs: Jobs, on_timeout: OnTimeout) -> None:
        self.limits = {name: limit for name, (_job, limit) in jobs.items()}
        self._on_timeout = on_timeout
        self._boxes: dict[str, list[Any]] = {}
        self._done: dict[str, threading.Event] = {}
        self.started = time.monotonic()
        for name, (job, _limit) in jobs.items():
            box: list[Any] = []
            event = threading.Event()
            self._boxes[name], self._done[name] = box, event
            threading.Thread(target=self._work, args=(job, box, event),
                             name=f"wellkept-check-{name}", daemon=True).start()

    def abandon(self) -> None:
        """Give up the results: the threads are daemons and end by themselves."""

    @staticmethod
    def _work(job: Callable[[], Any], box: list[Any], event: threading.Event) -> None:
        try:
            box.append(job())
        finally:
            event.set()

    def collect(self) -> dict[str, Any]:
        """Each job's result, waiting for each until its own limit (seconds from ``started``)."""
        results: dict[str, Any] = {}
        for name, limit in self.limits.items():
            finished = self._done[name].wait(max(0.0, self.started + limit - time.monotonic()))
            box = self._boxes[name]
            results[name] = box[0] if finished and box else self._on_timeout(name, limit)
        return results


class InChild:
    """The same jobs, run as ``Bounded`` by a forked child process that sends their results
    back through a pipe.

    Python runs one thread at a time, so checks in threads share one core with whatever the
    caller does meanwhile (importing SQLAlchemy, opening the store: a few hundred ms that the
    drivers' imports and the checks then wait behind). A child runs on the other core. Only a
    process with no other thread may fork safely; ``start_bounded`` sees to that."""

    #: how long after the last limit the child's answer may take to arrive
    MARGIN_SECONDS = 0.2
    #: how long a killed child is waited for before a daemon thread takes over its reaping
    REAP_SECONDS = 0.5

    def __init__(self, jobs: Jobs, on_timeout: OnTimeout) -> None:
        self.limits = {name: limit for name, (_job, limit) in jobs.items()}
        self._on_timeout = on_timeout
        self.started = time.monotonic()
        self._read, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: run the jobs, send the results, leave at once
            code = 1
            try:
                os.close(self._read)
                data = pickle.dumps(Bounded(jobs, on_timeout).collect())
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)  # nothing of the parent's (atexit, buffers, the store) may run
        os.close(write)

    def collect(self) -> dict[str, Any]:
        """The child's results; should it send none in time (it crashed, or was stuck past
        every limit), each job counts as timed out."""
        deadline = self.started + max(self.limits.values(), default=0.0) + self.MARGIN_SECONDS
        chunks: list[bytes] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._read], [], [], left)[0]:
                    break
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    return dict(pickle.loads(b"".join(chunks)))
                chunks.append(chunk)
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        finally:
            self.abandon()
        return {name: self._on_timeout(name, limit) for name, limit in self.limits.items()}

    def abandon(self) -> None:
        """Close the pipe, stop the child and reap it (so that no zombie is left). A child that
        a kill cannot end at once (stuck in the kernel on a hung network mount) is reaped by a
        daemon thread, so that the caller does not wait with it."""
        if self._read < 0:
            return
        os.close(self._read)
        self._read = -1
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)  # gone already, unless it is stuck
        deadline = time.monotonic() + self.REAP_SECONDS
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self._pid, os.WNOHANG)[0] != 0:
                    return
            except ChildProcessError:
                return
            time.sleep(0.01)
        threading.Thread(target=_reap, args=(self._pid,), daemon=True,
                         name="wellkept-reap").start()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def start_bounded(jobs: Jobs, on_timeout: OnTimeout, *,
                  own_process: bool = False) -> Bounded | InChild:
    """Start the jobs: in threads of this process, or with ``own_process`` in a child, when
    this process can fork and runs no other thread (forking beside running threads could
    copy a lock one of them holds)."""
    if own_process and hasattr(os, "fork") and threading.active_count() == 1:
        return InChild(jobs, on_timeout)
    return Bounded(jobs, on_timeout)


def run_bounded(jobs: Jobs, on_timeout: OnTimeout) -> dict[str, Any]:
    """Run each job in its own daemon thread; wait for each until its own limit (seconds from
    the common start) and put ``on_timeout(name, limit)`` in place of a job still running."""
    return Bounded(jobs, on_timeout).collect()


def ping_all(settings: Settings, registry: Registry | None = None, *, health: bool = False,
             names: list[str] | None = None) -> list[dict[str, Any]]:
    """Ping every target (or ``names``) concurrently; a hung one costs its own timeout."""
    registry = registry or Registry.default()
    chosen = sorted(names if names is not None else settings.targets)

    def timed_out(name: str, limit: float) -> dict[str, Any]:
        return {"target": name, "url": settings.targets[name].redacted_url, "status": "down",
                "latency_ms": None, "version": "", "error": f"no answer within {limit:g}s",
                "details": {}, "problem": "unreachable", "elapsed_ms": round(limit * 1000, 1)}

    jobs: Jobs = {
        n: (lambda n=n: ping_target(n, settings, registry, health=health),  # type: ignore[misc]
            settings.targets[n].timeout.total_seconds()) for n in chosen}
    found = run_bounded(jobs, timed_out)
    return [found[n] for n in chosen]


def check_store(url: str) -> dict[str, Any]:
    """Open the history store (applying migrations) and read from it; never raises."""
    from wellkept.history.store import HistoryStore

    store = HistoryStore(url)
    row: dict[str, Any] = {"url": redact(url), "error": None}
    try:
        store.list_runs(limit=1)
    except WellkeptError as exc:
        row["error"] = redact(str(exc))
    except Exception as exc:  # a bug must not hide the targets' results
        row["error"] = redact(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()
    return row
