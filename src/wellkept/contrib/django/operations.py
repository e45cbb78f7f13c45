"""The nine maintenance operations, and which task instances carry out each one.

An operation is not a task kind: it is what ``manage.py maintenance --operation NAME`` asks for
on one database, carried out by task instances of the wellkept config built from the Django
settings. For each maintainable database and operation, :func:`plan_operations` picks:

- the instances the user declared for it (``WELLKEPT['tasks']``, each tagged by its kind or
  its ``operation`` key, and the rules of ``DATABASE_CLEANUP_RULES``), or else
- one built-in instance, named after its kind (``vacuum``; ``vacuum@replica`` on another
  alias than ``default``), when the database's engine offers what the kind needs, or else
- nothing: the operation is then recorded as ``skipped``, with the reason (``views`` on
  SQLite: the engine has no materialized views; ``logs`` with no rule: nothing to clean).

The built-in instances are real task instances, so the coordinator's schedules can list them
and every run of an operation is recorded under the same task name, however it was started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wellkept.registry import Registry


@dataclass(frozen=True)
class Operation:
    name: str
    #: what the operation does, as ``manage.py maintenance`` describes it
    label: str
    #: the task kinds that can carry it out, in order of preference (the first one the
    #: database's engine offers is used); empty: only declared rules carry it out
    kinds: tuple[str, ...]
    #: the parameters of its built-in instance
    params: Mapping[str, Any] = field(default_factory=dict)


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("vacuum", "Vacuum & Analyze", ("vacuum", "optimize")),
    Operation("reindex", "Reindex bloated indexes", ("reindex",)),
    Operation("cleanup", "Clean soft-deleted records", ()),
    Operation("logs", "Clean audit/task logs", ()),
    Operation("sessions", "Clean expired sessions", ("sessions",)),
    Operation("views", "Update materialized views", ("views",)),
    Operation("stats", "Generate statistics", ("stats",)),
    Operation("bloat", "Check table bloat", ("bloat",)),
    # a bounded default: weekly backups must not fill the disk of a project that never
    # configured one (declare a backup task in WELLKEPT['tasks'] to choose)
    Operation("backup", "Create database backup", ("backup",),
              {"destination": "backups/", "keep_last": 7}),
)}

#: ``--schedule daily|weekly|monthly``: what each cadence runs
PROFILES: dict[str, tuple[str, ...]] = {
    "daily": ("sessions", "logs", "cleanup", "vacuum", "stats"),
    "weekly": ("reindex", "views", "bloat", "backup"),
    "monthly": tuple(OPERATIONS),
}

#: the operation a declared task of each kind carries out, unless its ``operation`` key says
#: otherwise (cleanup instances are placed by their table: see ``cleanup_operation``)
KIND_OPERATION: dict[str, str] = {
    "vacuum": "vacuum", "optimize": "vacuum", "reindex": "reindex", "sessions": "sessions",
    "views": "views", "stats": "stats", "bloat": "bloat", "backup": "backup",
}

#: tables Django itself owns, and the operation whose rule cleans them
DJANGO_TABLES = {"django_session": "sessions", "django_admin_log": "logs"}


def cleanup_operation(table: str | None) -> str:
    """The operation a cleanup rule belongs to when it does not say: Django's own sessions and
    admin log tables have theirs; every other table is ``cleanup``."""
    return DJANGO_TABLES.get((table or "").lower(), "cleanup")


def instance_name(kind: str, alias: str) -> str:
    return kind if alias == "default" else f"{kind}@{alias}"


@dataclass
class OperationPlan:
    """How one operation is carried out on one database."""

    tasks: list[str] = field(default_factory=list)
    #: when there is no task: why the operation is skipped (None: its kind does not apply to
    #: the engine, which the engine itself reports when the run is recorded)
    reason: str | None = None


@dataclass(frozen=True)
class Declared:
    """A task instance the user declared, as the planner needs to know it."""

    name: str
    kind: str
    targets: tuple[str, ...]
    operation: str | None


def plan_operations(schemes: Mapping[str, str], declared: list[Declared],
                    registry: Registry, reasons: Mapping[str, Mapping[str, str]]
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, OperationPlan]]]:
    """The built-in task instances to add to the config, and every database's plan.

    ``schemes`` maps each maintainable alias to its connector's URL scheme; ``reasons`` gives,
    per alias and operation, why it has nothing to do there unless a declared instance
    carries it out (sessions kept elsewhere)."""
    generated: dict[str, dict[str, Any]] = {}
    plans: dict[str, dict[str, OperationPlan]] = {}
    for alias, scheme in schemes.items():
        supported = _supported_kinds(registry, scheme)
        plans[alias] = {}
        why = reasons.get(alias, {})
        for op in OPERATIONS.values():
            mine = [d.name for d in declared if d.operation == op.name and alias in d.targets]
            plan = OperationPlan(tasks=mine)
            kind = next((k for k in op.kinds if k in supported), None)
            if not mine and kind is not None and op.name not in why:
                name = instance_name(kind, alias)
                generated[name] = {"kind": kind, "target": alias, **op.params,
                                   "description": f"manage.py maintenance --operation "
                                                  f"{op.name}"}
                plan.tasks.append(name)
            elif not mine and (kind is not None or not op.kinds):
                plan.reason = why.get(op.name) or (
                    f"no rule for database {alias!r} says what {op.name} cleans; add one to "
                    f"DATABASE_CLEANUP_RULES with 'operation': '{op.name}'")
            plans[alias][op.name] = plan
    return generated, plans


def _supported_kinds(registry: Registry, scheme: str) -> set[str]:
    """The operations' kinds whose every required capability the scheme's connector offers."""
    connector = registry.connector_class(scheme)
    kinds = {k for op in OPERATIONS.values() for k in op.kinds}
    return {k for k in kinds if connector.name in registry.engines_for(k)}


def expand(operations: list[str], *, everything: bool = False,
           profile: str | None = None) -> list[str]:
    """The operations to run, in order, each once: ``--operation`` as given, then the
    profile's, then (``--all``) every operation in the order of ``OPERATIONS``."""
    wanted = list(operations)
    if profile is not None:
        wanted += PROFILES[profile]
    if everything:
        wanted += list(OPERATIONS)
    return list(dict.fromkeys(wanted))
