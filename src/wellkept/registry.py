"""One registry for task kinds and connectors.

Built-ins are listed below as dotted paths and imported only when used, so ``wellkept --help``
never pays for a driver. Third-party kinds and connectors register exactly like built-ins,
through the entry-point groups ``wellkept.tasks`` (name = the kind) and ``wellkept.connectors``
(name = the URL scheme it handles), or, for task kinds, through the config's ``plugins:`` list
of modules: every ``@wellkept.task`` function (and every Task subclass with a ``kind``)
defined in such a module is registered under its name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from wellkept.errors import ConfigError

if TYPE_CHECKING:
    from wellkept.connector import Connector
    from wellkept.task import Task

BUILTIN_TASKS: dict[str, str] = {
    "advise": "wellkept.tasks.advice:Advise",
    "analyze": "wellkept.tasks.analyze:Analyze",
    "apply_advice": "wellkept.tasks.advice:ApplyAdvice",
    "backup": "wellkept.tasks.backup:Backup",
    "backup_freshness": "wellkept.tasks.backup_freshness:BackupFreshness",
    "bloat": "wellkept.tasks.bloat:Bloat",
    "cache_cleanup": "wellkept.tasks.cache_cleanup:CacheCleanup",
    "checkpoint": "wellkept.tasks.checkpoint:Checkpoint",
    "cleanup": "wellkept.tasks.cleanup:Cleanup",
    "consolidate": "wellkept.tasks.consolidate:Consolidate",
    "dr_drill": "wellkept.tasks.dr_drill:DrDrill",
    "export": "wellkept.tasks.export:Export",
    "file_cleanup": "wellkept.tasks.file_cleanup:FileCleanup",
    "health": "wellkept.tasks.health:Health",
    "index_health": "wellkept.tasks.index_health:IndexHealth",
    "integrity": "wellkept.tasks.integrity:Integrity",
    "log_rotate": "wellkept.tasks.log_rotate:LogRotate",
    "optimize": "wellkept.tasks.optimize:Optimize",
    "reconcile": "wellkept.tasks.reconcile:Reconcile",
    "report": "wellkept.tasks.report:Report",
    "reindex": "wellkept.tasks.reindex:Reindex",
    "security_audit": "wellkept.tasks.security_audit:SecurityAudit",
    "sessions": "wellkept.tasks.sessions:Sessions",
    "stats": "wellkept.tasks.stats:Stats",
    "vacuum": "wellkept.tasks.vacuum:Vacuum",
    "verify_backup": "wellkept.tasks.verify_backup:VerifyBackup",
    "views": "wellkept.tasks.views:Views",
}

#: URL scheme -> connector class
BUILTIN_CONNECTORS: dict[str, str] = {
    "sqlite": "wellkept.connectors.sqlite:SQLiteConnector",
    "postgresql": "wellkept.connectors.postgresql:PostgresConnector",
    "postgres": "wellkept.connectors.postgresql:PostgresConnector",
    "mysql": "wellkept.connectors.mysql:MySQLConnector",
    "mariadb": "wellkept.connectors.mysql:MySQLConnector",
    "duckdb": "wellkept.connectors.duckdb:DuckDBConnector",
    "redis": "wellkept.connectors.redis:RedisConnector",
    "rediss": "wellkept.connectors.redis:RedisConnector",
    "host": "wellkept.connectors.host:HostConnector",
    "files": "wellkept.connectors.files:FilesConnector",
}


def _load(path: str) -> object:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass
class Registry:
    """Task kinds by name and connectors by URL scheme, built-ins first, then entry points."""

    tasks: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_TASKS))
    connectors: dict[str, str] = field(default_factory=lambda: dict(BUILTIN_CONNECTORS))

    @classmethod
    def default(cls) -> Registry:
        """The built-ins plus the installed packages' entry points (a new registry each time:
        ``plugins:`` add to the one they are loaded into)."""
        plugged_tasks, plugged_connectors = _plugged()
        reg = cls()
        for name, value in plugged_tasks:
            reg.tasks.setdefault(name, value)
        for name, value in plugged_connectors:
            reg.connectors.setdefault(name, value)
        return reg

    def load_plugin(self, module_name: str, base_dir: Path | None = None) -> list[str]:
        """Import a ``plugins:`` module and register the task kinds it defines; the kinds.

        The config file's folder is importable too, so a ``maintenance.py`` beside
        ``wellkept.yml`` is found as ``plugins: [maintenance]``."""
        import sys

        if base_dir is not None and str(base_dir) not in sys.path:
            sys.path.append(str(base_dir))
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module: any error is theirs to see
            raise ConfigError(f"cannot import plugin module {module_name!r}: "
                              f"{type(exc).__name__}: {exc}") from None
        found = []
        for attr, value in vars(module).items():
            kind = _plugin_kind(value, module_name)
            if kind is None:
                continue
            path = f"{module_name}:{attr}"
            if kind in BUILTIN_TASKS:
                raise ConfigError(f"{path} registers the task kind {kind!r}, which is a "
                                  "built-in kind; choose another name")
            known = self.tasks.get(kind)
            if known is not None and known != path and _load(known) is not value:
                raise ConfigError(f"{path} registers the task kind {kind!r}, which {known} "
                                  "registers already")
            self.tasks[kind] = path
            found.append(kind)
        return found

    def task_names(self) -> list[str]:
        return sorted(self.tasks)

    def schemes(self) -> list[str]:
        return sorted(self.connectors)

    def task_class(self, kind: str) -> type[Task]:
        if kind not in self.tasks:
            raise ConfigError(f"unknown task kind {kind!r}; choose one of: "
                              + ", ".join(self.task_names()))
        return self._classes[("task", kind)]

    def connector_class(self, scheme: str) -> type[Connector]:
        if scheme not in self.connectors:
            raise ConfigError(f"no connector handles URL scheme {scheme!r}; known schemes: "
                              + ", ".join(self.schemes()))
        return self._classes[("connector", scheme)]

    def engines_for(self, kind: str) -> list[str]:
        """Connector names whose class offers every capability the kind requires."""
        task = self.task_class(kind)
        names = set()
        for scheme in self.connectors:
            cls = self.connector_class(scheme)
            if all(_implements(cls, proto) for proto in task.requires):
                names.add(cls.name)
        return sorted(names)

    @cached_property
    def _classes(self) -> _LazyClasses:
        return _LazyClasses(self)


def _plugin_kind(value: object, module_name: str) -> str | None:
    """The kind a module attribute defines: a ``@wellkept.task`` function or a Task subclass
    with its own ``kind``, defined in that module (what it imports is not its to register)."""
    from wellkept.task import Task

    task_class = getattr(value, "task_class", None)
    if isinstance(task_class, type) and issubclass(task_class, Task):
        return task_class.kind if task_class.__module__ == module_name else None
    if isinstance(value, type) and issubclass(value, Task) and value.__dict__.get("kind") \
            and value.__module__ == module_name:
        return value.kind
    return None


def _implements(cls: type, proto: type) -> bool:
    members = [m for m in dir(proto) if not m.startswith("_")]
    return all(callable(getattr(cls, m, None)) for m in members)


class _LazyClasses(dict[tuple[str, str], type]):
    """Imports each class on first use and caches it."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self._registry = registry

    def __missing__(self, key: tuple[str, str]) -> type:
        group, name = key
        path = (self._registry.tasks if group == "task" else self._registry.connectors)[name]
        loaded = _load(path)
        loaded = getattr(loaded, "task_class", loaded)  # a @wellkept.task function
        if not isinstance(loaded, type):
            raise ConfigError(f"{group} {name!r} ({path}) is not a class")
        self[key] = loaded
        return loaded


@cache
def _plugged() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The entry points of both groups, read once a process: each look reads the metadata of
    every installed distribution (0.05-0.1 s in a large environment)."""
    found = entry_points()
    return (tuple((ep.name, ep.value) for ep in found.select(group="wellkept.tasks")),
            tuple((ep.name, ep.value) for ep in found.select(group="wellkept.connectors")))
