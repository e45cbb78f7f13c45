"""wellkept keeps databases and the services around them well kept.

The public API is imported lazily so that ``import wellkept`` (and ``wellkept --help``) stays
fast: drivers, SQLAlchemy and pydantic load only when used.

``wellkept.task`` is the task decorator (CONTRACT §6), although ``wellkept/task.py`` is also
the module of the Task base class: importing that module binds it as an attribute of this
package, so the package's class turns the name back into the decorator (see ``_Package``).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "wellkept.config",
    "Settings": "wellkept.config",
    "Engine": "wellkept.engine",
    "RunRequest": "wellkept.engine",
    "Task": "wellkept.task",
    "TaskParams": "wellkept.task",
    "TaskResult": "wellkept.records",
    "RunRecord": "wellkept.records",
    "RunContext": "wellkept.context",
    "RunStatus": "wellkept.types",
    "Trigger": "wellkept.types",
    "TaskFunction": "wellkept.taskfunc",
    "Recoverer": "wellkept.recovery",
    "Coordinator": "wellkept.coordinator",
}

if TYPE_CHECKING:
    from wellkept.config import Settings, load_config
    from wellkept.context import RunContext
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine, RunRequest
    from wellkept.records import RunRecord, TaskResult
    from wellkept.recovery import Recoverer
    from wellkept.task import Task, TaskParams
    from wellkept.taskfunc import TaskFunction
    from wellkept.taskfunc import task as task
    from wellkept.types import RunStatus, Trigger


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wellkept' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keeps ``wellkept.task`` the decorator even after the module ``wellkept.task`` loads."""

    @property
    def task(self) -> Any:
        from wellkept.taskfunc import task

        return task

    @task.setter
    def task(self, value: Any) -> None:
        pass  # the import system binding the submodule here; `wellkept.task` stays the decorator


sys.modules[__name__].__class__ = _Package

__all__ = ["Coordinator", "Engine", "Recoverer", "RunContext", "RunRecord", "RunRequest",
           "RunStatus", "Settings", "Task", "TaskFunction", "TaskParams", "TaskResult",
           "Trigger", "__version__", "load_config", "task"]
