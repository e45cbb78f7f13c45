"""The schedules of the Django settings (the default schedules and
``CUSTOM_MAINTENANCE_SCHEDULES``) as wellkept schedules, which ``start_maintenance_coordinator``
fires.

Such a schedule names one ``database_alias`` (``default`` unless given) and one ``task_type``:
a cadence (``daily``, ``weekly``, ``monthly``: the operations of ``manage.py maintenance
--schedule``), one operation (``vacuum``…), one of the built-in checks (``health_check``,
``backup_test``, ``disaster_recovery_test``), a report (``daily_report``, ``weekly_report``),
or the name of a task instance declared in ``WELLKEPT['tasks']`` or of a cleanup rule.
``schedule_cron`` is its cron expression; ``enabled``, ``description``, ``timezone``,
``window``, ``grace`` and ``catch_up`` mean what they mean in wellkept.yml. An entry named like
a default schedule changes only the keys it gives. Schedules in ``WELLKEPT['schedules']`` are
wellkept's own (``cron`` and a ``tasks`` list).

A schedule runs on its database only. A rule or declared task that covers several databases is
listed as ``NAME@ALIAS``: that task, on this database alone (the run is recorded under NAME,
with the database as its target); the built-in instances are one per database already
(``vacuum``, ``vacuum@replica``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wellkept.contrib.django.operations import OPERATIONS, PROFILES, OperationPlan, instance_name

SETTING = "CUSTOM_MAINTENANCE_SCHEDULES"

#: the built-in checks and the kind that performs each
CHECKS: dict[str, str] = {"health_check": "health", "backup_test": "verify_backup",
                          "disaster_recovery_test": "dr_drill"}

#: the reports, each mailed by a ``report`` instance of the same name
REPORTS: dict[str, str] = {"daily_report": "daily", "weekly_report": "weekly"}

#: the default schedules of the default database; the last two run only with
#: ENABLE_BACKUP_TESTING and ENABLE_DISASTER_RECOVERY (they fail, and alert, until backups are
#: being made)
DEFAULTS: dict[str, dict[str, Any]] = {
    "daily_maintenance": {"task_type": "daily", "schedule_cron": "0 2 * * *"},
    "weekly_optimization": {"task_type": "weekly", "schedule_cron": "0 3 * * 0"},
    "monthly_deep_maintenance": {"task_type": "monthly", "schedule_cron": "0 4 1 * *"},
    "backup_testing": {"task_type": "backup_test", "schedule_cron": "0 5 * * 6",
                       "enabled_by": "ENABLE_BACKUP_TESTING"},
    "disaster_recovery_test": {"task_type": "disaster_recovery_test",
                               "schedule_cron": "0 6 1 * *",
                               "enabled_by": "ENABLE_DISASTER_RECOVERY"},
}

#: the default report schedules, after the night's maintenance; enabled by
#: SEND_MAINTENANCE_REPORTS and SEND_WEEKLY_MAINTENANCE_REPORTS (when there is somewhere to
#: send them)
REPORT_DEFAULTS: dict[str, dict[str, Any]] = {
    "daily_maintenance_report": {"task_type": "daily_report", "schedule_cron": "0 7 * * *",
                                 "enabled_by": "SEND_MAINTENANCE_REPORTS"},
    "weekly_maintenance_report": {"task_type": "weekly_report", "schedule_cron": "0 7 * * 1",
                                  "enabled_by": "SEND_WEEKLY_MAINTENANCE_REPORTS"},
}

#: the keys of such a schedule besides database_alias, task_type and schedule_cron
PASSED_ON = ("enabled", "description", "timezone", "window", "grace", "catch_up")
KEYS = ("database_alias", "task_type", "schedule_cron", *PASSED_ON)


def maintenance_schedules(custom: Any, *, flags: Mapping[str, bool],
                          plans: dict[str, dict[str, OperationPlan]],
                          declared: Mapping[str, tuple[str, ...]],
                          report_channels: list[str], tasks: dict[str, dict[str, Any]],
                          problems: list[str]) -> dict[str, dict[str, Any]]:
    """Wellkept schedules for the defaults and ``custom``. ``declared`` maps each declared
    task and rule to the targets it covers; ``report_channels`` is where the reports go
    (empty: the alert channels). Instances that the checks and reports need are added to
    ``tasks``; what is wrong goes to ``problems``."""
    if custom is None:
        custom = {}
    if not isinstance(custom, Mapping):
        problems.append(f"{SETTING} must be a dict of schedules, not {type(custom).__name__}")
        custom = {}
    entries: dict[str, tuple[dict[str, Any], bool]] = {}
    # the maintenance defaults are the default database's; the reports need no database
    defaults = {**(DEFAULTS if "default" in plans else {}), **REPORT_DEFAULTS}
    for name, body in defaults.items():
        entry = {k: v for k, v in body.items() if k != "enabled_by"}
        if "enabled_by" in body:
            entry["enabled"] = bool(flags.get(body["enabled_by"], False))
        entries[name] = (entry, False)
    for name, body in custom.items():
        if not isinstance(body, Mapping):
            problems.append(f"{SETTING}[{name!r}] must be a dict with task_type and "
                            "schedule_cron")
            continue
        base = entries[name][0] if name in entries else {}
        entries[str(name)] = ({**base, **body}, True)
    context = _Context(plans, declared, report_channels, tasks, problems)
    out = {}
    for name, (entry, custom_entry) in entries.items():
        schedule = _schedule(name, entry, context, custom_entry)
        if schedule is not None:
            out[name] = schedule
    return out


@dataclass(frozen=True)
class _Context:
    plans: dict[str, dict[str, OperationPlan]]
    declared: Mapping[str, tuple[str, ...]]
    report_channels: list[str]
    tasks: dict[str, dict[str, Any]]
    problems: list[str]


def _schedule(name: str, entry: dict[str, Any], ctx: _Context,
              custom: bool) -> dict[str, Any] | None:
    where = f"{SETTING}[{name!r}]"
    unknown = sorted(str(k) for k in entry if k not in KEYS)
    if unknown:
        ctx.problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: "
                            + ", ".join(KEYS))
        return None
    alias = entry.get("database_alias", "default")
    if alias not in ctx.plans and ("database_alias" in entry
                                   or entry.get("task_type") not in REPORTS):
        ctx.problems.append(f"{where}['database_alias']: {alias!r} is not a database wellkept "
                            "can maintain; choose one of: "
                            + (", ".join(sorted(ctx.plans)) or "(none)"))
        return None
    if "schedule_cron" not in entry or "task_type" not in entry:
        missing = [k for k in ("task_type", "schedule_cron") if k not in entry]
        new = "" if name in DEFAULTS or name in REPORT_DEFAULTS else (
            f" (a new schedule needs both; an entry named like a default schedule changes only "
            f"the keys it gives: {', '.join([*DEFAULTS, *REPORT_DEFAULTS])})")
        ctx.problems.append(f"{where}: required key(s) missing: {', '.join(missing)}{new}")
        return None
    task_type = str(entry["task_type"])
    found = _tasks_for(task_type, alias, "database_alias" in entry, ctx, where)
    if found is None:
        return None
    if not found and not custom:
        return None  # a default with nothing to do on this database (no rule, no engine)
    body = {k: entry[k] for k in PASSED_ON if k in entry}
    body.setdefault("description", _description(task_type, alias, ctx))
    return {"cron": entry["schedule_cron"], "tasks": found, **body}


def _description(task_type: str, alias: str, ctx: _Context) -> str:
    if task_type in PROFILES:
        return f"{task_type} maintenance of database {alias!r}"
    if task_type in REPORTS:
        return f"mail the {REPORTS[task_type]} maintenance report"
    if task_type in ctx.declared and alias not in ctx.declared[task_type]:
        return task_type  # a declared task, on the targets it names
    return f"{task_type} on database {alias!r}"


def _tasks_for(task_type: str, alias: str, explicit: bool, ctx: _Context,
               where: str) -> list[str] | None:
    """The schedule's task list (None: a problem was reported)."""
    if task_type in PROFILES or task_type in OPERATIONS:
        ops = PROFILES.get(task_type, (task_type,))
        names = dict.fromkeys(t for op in ops for t in ctx.plans[alias][op].tasks)
        return [_scheduled_on(t, alias, ctx.declared) for t in names]
    if task_type in CHECKS:
        kind = CHECKS[task_type]
        # health looks at every target from the host; the others at the one database
        name = kind if kind == "health" else instance_name(kind, alias)
        ctx.tasks.setdefault(name, {"kind": kind} if kind == "health" else
                             {"kind": kind, "target": alias})
        return [name]
    if task_type in REPORTS:
        # the report covers every run of the history; it runs on the host
        channels = {"channels": list(ctx.report_channels)} if ctx.report_channels else {}
        ctx.tasks.setdefault(task_type, {"kind": "report", "type": REPORTS[task_type],
                                         **channels})
        return [task_type]
    if task_type in ctx.declared:
        covers = ctx.declared[task_type]
        if alias in covers:
            return [_scheduled_on(task_type, alias, ctx.declared)]
        if explicit and any(t in ctx.plans for t in covers):
            ctx.problems.append(f"{where}['task_type']: {task_type!r} does not run on database "
                                f"{alias!r}; as database_alias, choose one of: "
                                + ", ".join(covers))
            return None
        return [task_type]  # not a task of a database (or no database was named)
    choices = [*PROFILES, *OPERATIONS, *CHECKS, *REPORTS, *sorted(ctx.declared)]
    ctx.problems.append(f"{where}['task_type']: unknown task type {task_type!r}; choose one "
                        f"of: {', '.join(choices)}")
    return None


def _scheduled_on(name: str, alias: str, declared: Mapping[str, tuple[str, ...]]) -> str:
    """The schedule entry running task ``name`` on ``alias`` alone: ``NAME@ALIAS`` for a task
    that covers several databases (it would run on each of them otherwise)."""
    return f"{name}@{alias}" if len(declared.get(name, ())) > 1 else name
