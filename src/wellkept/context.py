"""What a running task sees: its connector, parameters, and ways to report progress."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wellkept.errors import StopRequested, TaskFailed, TaskTimeout
from wellkept.types import Trigger

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.connector import Connector
    from wellkept.history.store import HistoryStore
    from wellkept.registry import Registry
    from wellkept.task import TaskParams

ProgressCallback = Callable[[str, float | None, str], None]


@dataclass
class RunContext:
    """Handed to ``Task.run``. Mutating tasks must look at ``dry_run`` before changing anything."""

    run_id: str
    task_name: str
    kind: str
    target_name: str
    connector: Connector
    params: TaskParams
    dry_run: bool
    trigger: Trigger
    store: HistoryStore
    base_dir: Path
    #: the fencing token: which attempt of this run this worker is (recovery bumps it)
    attempt: int = 1
    #: the checkpoint this run continues from (recovery's resume strategy), else None:
    #: ``{"run_id", "status", "name", "percent", "data", "strategy"}``
    resumed_from: dict[str, Any] | None = None
    #: see Task.checkpoint_every: progress this far past the last checkpoint records one
    checkpoint_every: float | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("wellkept.task"))
    on_progress: ProgressCallback | None = None
    statements: list[str] = field(default_factory=list)
    extra_details: dict[str, Any] = field(default_factory=dict)
    #: the whole config and registry, for tasks and middleware that look past their own target
    #: (health checks every target; alerts and metrics read the alerts/metrics keys)
    settings: Settings | None = None
    registry: Registry | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _cancel_reason: str = ""
    _stop_reason: str = ""
    _last_checkpoint: tuple[str, float, dict[str, Any]] | None = None

    # --- cancellation (timeouts, shutdown) ------------------------------------------------------

    def cancel(self, reason: str) -> None:
        self._cancel_reason = reason
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Long tasks call this between steps; it raises once the run has been cancelled."""
        if self._cancel.is_set():
            raise TaskTimeout(self._cancel_reason or "the run was cancelled")

    def cancelled_wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return early (True) when the run is cancelled."""
        return seconds > 0 and self._cancel.wait(seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the run is cancelled."""
        if seconds > 0 and self._cancel.wait(seconds):
            self.check_cancelled()

    def request_stop(self, reason: str) -> None:
        """Ask the run to stop at its next checkpoint (a graceful shutdown); work between two
        checkpoints is not interrupted. ``cancel`` is the hard stop."""
        self._stop_reason = reason or "a stop was requested"

    def wait_unless_stopped(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return early (True) when cancelled or asked to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop_requested or self._cancel.wait(min(left, 0.25)):
                return True
        return self.cancelled or self.stop_requested

    @property
    def stop_requested(self) -> bool:
        """True once ``request_stop`` was called: tasks that poll stop at a checkpoint."""
        return bool(self._stop_reason)

    @property
    def stop_reason(self) -> str:
        return self._stop_reason

    # --- reporting ------------------------------------------------------------------------------

    def issued(self, statement: str) -> None:
        """Record a statement sent to the target (kept in the run's details)."""
        self.statements.append(statement)

    def progress(self, percent: float | None, step: str, description: str = "") -> None:
        """Report progress; it shows in the history and on the terminal.

        With ``checkpoint_every``, a report that gets that far past the last checkpoint also
        records one, named after ``step``, carrying the data of the last explicit checkpoint
        (a resumed run then knows which step had been reached)."""
        if self.on_progress is not None:
            self.on_progress(step, percent, description)
        if not self.store.set_progress(self.run_id, self.attempt, percent, step, description):
            # another attempt owns the run now (we were presumed dead): stop, write nothing more
            self.cancel(f"attempt {self.attempt} no longer owns run {self.run_id}")
            return
        if self.checkpoint_every and percent is not None:
            last = self._last_checkpoint[1] if self._last_checkpoint else 0.0
            if percent - last >= self.checkpoint_every:
                data = dict(self._last_checkpoint[2]) if self._last_checkpoint else {}
                self.checkpoint(step, percent, data)

    def checkpoint(self, name: str, percent: float, data: dict[str, Any]) -> None:
        """Persist a resume point (``data`` must be JSON-serialisable).

        Rejected (TaskFailed) when a newer attempt owns the run: a stale worker must not
        overwrite it. Once saved, raises StopRequested if the run was asked to stop at its
        next checkpoint, so a task stops exactly where a recovery can resume it."""
        if not self.store.add_checkpoint(self.run_id, self.attempt, name, percent, data):
            raise TaskFailed(f"attempt {self.attempt} no longer owns run {self.run_id}; "
                             "stopping so that a newer attempt is not overwritten")
        self._last_checkpoint = (name, percent, data)
        if self._stop_reason:
            raise StopRequested(f"stopped at checkpoint {name!r} ({percent:g}%): "
                                f"{self._stop_reason}")

    def seed_checkpoint(self, name: str, percent: float, data: dict[str, Any]) -> None:
        """A resumed run starts from the checkpoint it resumes (for ``checkpoint_every``)."""
        self._last_checkpoint = (name, percent, dict(data))

    @property
    def last_checkpoint(self) -> tuple[str, float, dict[str, Any]] | None:
        """(name, percent, data) of this run's latest checkpoint, if it wrote one."""
        return self._last_checkpoint

    def whole_settings(self) -> Settings:
        """The whole config, for kinds that look past their own target (health, reconcile,
        security_audit); TaskFailed when the run was not started by the engine."""
        if self.settings is None:
            raise TaskFailed(f"{self.kind} needs the whole config (run it through the engine)")
        return self.settings

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path
