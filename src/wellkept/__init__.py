"""wellkept keeps databases and the services around them well kept.

The public API is imported lazily so that ``import wellkept`` (and ``wellkept --help``) stays
fast: drivers, SQLAlchemy and pydantic load only when used.
"""

from __future__ import annotations

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
}

if TYPE_CHECKING:
    from wellkept.config import Settings, load_config
    from wellkept.context import RunContext
    from wellkept.engine import Engine, RunRequest
    from wellkept.records import RunRecord, TaskResult
    from wellkept.task import Task, TaskParams
    from wellkept.types import RunStatus, Trigger


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wellkept' has no attribute {name!r}")


__all__ = ["Engine", "RunContext", "RunRecord", "RunRequest", "RunStatus", "Settings", "Task",
           "TaskParams", "TaskResult", "Trigger", "__version__", "load_config"]
