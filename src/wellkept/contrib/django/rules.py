"""``DATABASE_CLEANUP_RULES`` as cleanup task instances.

Each rule is a cleanup rule in the shape existing Django maintenance setups use (``table``,
``date_column``, ``retention_days``, ``cleanup_type``), which the cleanup kind accepts as it
is, or in wellkept's own (``retention: 30d``, ``mode``, ``where``, ``batch_size``, a
``preset``…).
Two keys are the Django integration's own: ``database_alias`` (the database it cleans,
``default`` unless given, or a list of aliases: the rule then cleans each one, one run per
database, and a schedule for one database runs it there only) and
``operation`` (``cleanup``, ``logs`` or ``sessions``: which ``manage.py maintenance``
operation runs it; by default ``sessions`` for ``django_session``,
``logs`` for ``django_admin_log`` and ``cleanup`` for every other table).

When the setting is absent, the default rule applies: the admin log is archived after 90
days (when ``django.contrib.admin`` is installed). Expired sessions need no rule: the
``sessions`` operation deletes them by itself. ``DATABASE_CLEANUP_RULES = {}`` means no rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wellkept.contrib.django.operations import cleanup_operation
from wellkept.tasks.cleanup import PRESETS

SETTING = "DATABASE_CLEANUP_RULES"
RULE_OPERATIONS = ("cleanup", "logs", "sessions")

#: the default rule: the admin log
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "admin_logentry": {"preset": "django_admin_log"},
}


@dataclass(frozen=True)
class Rule:
    name: str
    aliases: tuple[str, ...]
    operation: str
    #: the task instance's keys (kind, target and the cleanup parameters)
    body: dict[str, Any]


def cleanup_rules(value: Any, *, defined: bool, installed_apps: list[str],
                  aliases: set[str], problems: list[str]) -> list[Rule]:
    """The rules, or the default rule when the setting is not ``defined``; what is wrong with
    them goes to ``problems``, each naming the setting and the key."""
    if not defined:
        value = DEFAULT_RULES if "django.contrib.admin" in installed_apps else {}
    if not isinstance(value, Mapping):
        problems.append(f"{SETTING} must be a dict of rules ({{'name': {{'table': …, "
                        f"'date_column': …, 'retention_days': …}}}}), not "
                        f"{type(value).__name__}")
        return []
    rules = []
    for name, raw in value.items():
        where = f"{SETTING}[{name!r}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where} must be a dict with table, date_column and "
                            "retention_days")
            continue
        body = dict(raw)
        named = body.pop("database_alias", "default")
        operation = body.pop("operation", None)
        many = isinstance(named, list | tuple)
        chosen = tuple(str(a) for a in named) if many else (str(named),)
        wrong = [a for a in chosen if a not in aliases]
        if wrong or not chosen:
            problems.append(f"{where}['database_alias']: {', '.join(map(repr, wrong)) or '[]'} "
                            "is not a database wellkept can maintain; choose from: "
                            + (", ".join(sorted(aliases)) or "(none)"))
            continue
        table = body.get("table") or PRESETS.get(str(body.get("preset")), {}).get("table")
        operation = operation or cleanup_operation(table)
        if operation not in RULE_OPERATIONS:
            problems.append(f"{where}['operation']: {operation!r} is not allowed; choose one "
                            f"of: {', '.join(RULE_OPERATIONS)}")
            continue
        where_to = {"targets": list(chosen)} if many else {"target": chosen[0]}
        rules.append(Rule(str(name), chosen, str(operation),
                          {"kind": "cleanup", **where_to, **body}))
    return rules
