"""Point a config problem back at the Django setting it came from.

The validator names key paths of the config it was given (``tasks.admin_logentry.retention``).
A Django user wrote ``DATABASE_CLEANUP_RULES['admin_logentry']`` or
``CUSTOM_MAINTENANCE_SCHEDULES['hourly']['schedule_cron']``, so each problem's path is
rewritten to the setting that holds it. Task and schedule names may contain dots, so the names
are matched whole (the longest first), never parsed out of the path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: keys a CUSTOM_MAINTENANCE_SCHEDULES entry spells otherwise than wellkept does
SCHEDULE_KEYS = {"cron": "schedule_cron"}


@dataclass(frozen=True)
class Names:
    """Which setting each name of the built config came from."""

    rules: set[str] = field(default_factory=set)
    declared: set[str] = field(default_factory=set)
    custom: set[str] = field(default_factory=set)
    own_schedules: set[str] = field(default_factory=set)
    databases: set[str] = field(default_factory=set)


def locate(problem: str, names: Names) -> str:
    """``problem`` with its leading key path in the Django user's terms."""
    prefixes: list[tuple[str, str, dict[str, str]]] = []
    for name in names.rules:
        prefixes.append((f"tasks.{name}", f"DATABASE_CLEANUP_RULES[{name!r}]", {}))
    for name in names.declared:
        prefixes.append((f"tasks.{name}", f"WELLKEPT['tasks'][{name!r}]", {}))
    for name in names.custom - names.own_schedules:
        prefixes.append((f"schedules.{name}", f"CUSTOM_MAINTENANCE_SCHEDULES[{name!r}]",
                         SCHEDULE_KEYS))
    for name in names.own_schedules:
        prefixes.append((f"schedules.{name}", f"WELLKEPT['schedules'][{name!r}]", {}))
    for name in names.databases:
        prefixes.append((f"targets.{name}", f"DATABASES[{name!r}] (its URL) or "
                                            f"WELLKEPT['targets'][{name!r}]", {}))
    for prefix, label, renames in sorted(prefixes, key=lambda p: len(p[0]), reverse=True):
        if problem.startswith(prefix) and problem[len(prefix):len(prefix) + 1] in (".", ":",
                                                                                   "["):
            return label + _subscript(problem[len(prefix):], renames)
    head = _head(problem)
    return f"WELLKEPT[{head!r}]" + _subscript(problem[len(head):], {})


def _head(text: str) -> str:
    end = min((i for i in (text.find(c) for c in ".:[") if i >= 0), default=len(text))
    return text[:end]


def _subscript(rest: str, renames: dict[str, str]) -> str:
    """``.key.more: message`` -> ``['key'].more: message`` (one level, renamed if need be)."""
    if not rest.startswith("."):
        return rest
    key = _head(rest[1:])
    return f"[{renames.get(key, key)!r}]" + rest[1 + len(key):]
