"""What a running task sees: its connector, parameters, and ways to report progress."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wellkept.errors import TaskFailed, TaskTimeout
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
    attempt: int = 1
    resumed_from: dict[str, Any] | None = None
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

    # --- reporting ------------------------------------------------------------------------------

    def issued(self, statement: str) -> None:
        """Record a statement sent to the target (kept in the run's details)."""
        self.statements.append(statement)

    def progress(self, percent: float | None, step: str, description: str = "") -> None:
        """Report progress; it shows in the history and on the terminal."""
        if self.on_progress is not None:
            self.on_progress(step, percent, description)
        self.store.set_progress(self.run_id, self.attempt, percent, step, description)

    def checkpoint(self, name: str, percent: float, data: dict[str, Any]) -> None:
        """Persist a resume point. Rejected (TaskFailed) when a newer attempt owns the run."""
        if not self.store.add_checkpoint(self.run_id, self.attempt, name, percent, data):
            raise TaskFailed(f"attempt {self.attempt} no longer owns run {self.run_id}; "
                             "stopping so that a newer attempt is not overwritten")

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
