"""The Django settings as one wellkept config: the same ``Settings``, validated by the same
models as a wellkept.yml.

What goes in, and where it comes from:

- ``targets``: one per alias of ``DATABASES`` (see ``databases``), plus any other target in
  ``WELLKEPT['targets']``, where an alias's entry may set its timeouts (not its URL);
- ``tasks``: ``WELLKEPT['tasks']``, the rules of ``DATABASE_CLEANUP_RULES`` and the built-in
  instances of the nine operations (see ``operations``);
- ``schedules``: the default schedules (the reports' with ``SEND_MAINTENANCE_REPORTS`` and
  ``SEND_WEEKLY_MAINTENANCE_REPORTS``), ``CUSTOM_MAINTENANCE_SCHEDULES`` and
  ``WELLKEPT['schedules']`` (see ``schedules``);
- ``alerts``: ``WELLKEPT['alerts']``, plus an email channel through Django's email backend for
  ``MAINTENANCE_NOTIFICATION_EMAILS`` and the ``DB_ALERT_*`` thresholds;
- ``state``: ``WELLKEPT['state']``, a URL or a ``DATABASES`` alias; by default the ``default``
  database (PostgreSQL or SQLite), so the admin can show the runs;
- ``timezone``: ``WELLKEPT['timezone']``, else ``TIME_ZONE``; relative paths resolve against
  ``BASE_DIR`` (else the working folder).

Every other key of ``WELLKEPT`` is a wellkept.yml key (coordinator, recovery, health, metrics,
emergency, plugins…). Problems are reported all at once, each naming the Django setting and key.
Nothing here connects to anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wellkept.config import DEFAULT_STATE, Settings, settings_from_mapping
from wellkept.contrib.django import origins
from wellkept.contrib.django.databases import DatabaseTarget, database_targets
from wellkept.contrib.django.operations import (
    KIND_OPERATION,
    OPERATIONS,
    Declared,
    OperationPlan,
    cleanup_operation,
    plan_operations,
)
from wellkept.contrib.django.rules import cleanup_rules
from wellkept.contrib.django.schedules import maintenance_schedules
from wellkept.errors import ConfigError, UsageError
from wellkept.registry import Registry

SOURCE = "Django settings"
SESSION_BACKENDS = ("django.contrib.sessions.backends.db",
                    "django.contrib.sessions.backends.cached_db")
#: the settings that turn the daily and the weekly report on
REPORT_FLAGS = ("SEND_MAINTENANCE_REPORTS", "SEND_WEEKLY_MAINTENANCE_REPORTS")
#: the ``DB_ALERT_*`` thresholds and where each goes in ``alerts.thresholds``
THRESHOLDS = {
    "DB_ALERT_CONNECTION_WARNING": ("connection_percent", "warning"),
    "DB_ALERT_CONNECTION_CRITICAL": ("connection_percent", "critical"),
    "DB_ALERT_QUERY_TIME_WARNING": ("query_seconds", "warning"),
    "DB_ALERT_QUERY_TIME_CRITICAL": ("query_seconds", "critical"),
    "DB_ALERT_REPLICATION_WARNING": ("replication_lag_seconds", "warning"),
    "DB_ALERT_REPLICATION_CRITICAL": ("replication_lag_seconds", "critical"),
    "DB_ALERT_CPU_WARNING": ("cpu_percent", "warning"),
    "DB_ALERT_MEMORY_WARNING": ("memory_percent", "warning"),
    "DB_ALERT_DISK_WARNING": ("disk_percent", "warning"),
}


@dataclass(frozen=True)
class Issue:
    """A problem with the settings, as a system check reports it."""

    level: str  # "error" or "warning"
    id: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class DjangoConfig:
    """The validated config and what the Django commands need besides it."""

    settings: Settings
    #: every alias of DATABASES, usable or not
    databases: dict[str, DatabaseTarget]
    #: alias -> operation -> how it is carried out
    plans: dict[str, dict[str, OperationPlan]]
    #: the DATABASES alias holding wellkept's history (the admin reads it), if any
    state_alias: str | None

    def database(self, alias: str) -> DatabaseTarget:
        """The maintainable database ``--database ALIAS`` names, or UsageError."""
        db = self.databases.get(alias)
        if db is None:
            raise UsageError(f"--database: unknown database {alias!r}; DATABASES has: "
                             + ", ".join(sorted(self.databases)))
        if db.problem:
            raise UsageError(f"--database {alias}: wellkept cannot maintain it: {db.problem}")
        return db


@dataclass
class Built:
    config: DjangoConfig | None
    issues: list[Issue] = field(default_factory=list)


def load(django_settings: Any = None, registry: Registry | None = None) -> DjangoConfig:
    """The config, or ConfigError listing every error (warnings are the checks' business)."""
    built = build(django_settings, registry)
    errors = [i.message for i in built.issues if i.level == "error"]
    if errors or built.config is None:
        raise ConfigError(errors, SOURCE)
    return built.config


def build(django_settings: Any = None, registry: Registry | None = None) -> Built:
    if django_settings is None:
        from django.conf import settings as django_settings
    dj = django_settings
    registry = registry or Registry.default()
    issues: list[Issue] = []
    problems: list[str] = []  # errors naming their setting, reported as wellkept.E001
    wk = getattr(dj, "WELLKEPT", {}) or {}
    if not isinstance(wk, Mapping):
        problems.append(f"WELLKEPT must be a dict of wellkept.yml keys, not {type(wk).__name__}")
        wk = {}
    base_dir = Path(os.fspath(getattr(dj, "BASE_DIR", None) or os.getcwd())).resolve()
    databases = database_targets(getattr(dj, "DATABASES", {}) or {})
    issues += _database_warnings(databases)
    usable = {a: d for a, d in databases.items() if d.usable}
    raw: dict[str, Any] = {k: v for k, v in wk.items()
                           if k not in ("targets", "tasks", "schedules", "alerts", "state")}
    raw["timezone"] = wk.get("timezone") or getattr(dj, "TIME_ZONE", None) or "UTC"
    raw["targets"] = _targets(usable, wk.get("targets"), problems)
    tasks, declared = _declared_tasks(wk.get("tasks"), problems)
    rules = cleanup_rules(getattr(dj, "DATABASE_CLEANUP_RULES", None),
                          defined=hasattr(dj, "DATABASE_CLEANUP_RULES"),
                          installed_apps=list(getattr(dj, "INSTALLED_APPS", [])),
                          aliases=set(usable), problems=problems)
    for rule in rules:
        if rule.name in tasks:
            problems.append(f"DATABASE_CLEANUP_RULES[{rule.name!r}]: WELLKEPT['tasks'] has a "
                            "task of the same name; rename one of them")
            continue
        tasks[rule.name] = rule.body
        declared.append(Declared(rule.name, "cleanup", rule.aliases, rule.operation))
    generated, plans = plan_operations(
        {a: d.vendor for a, d in usable.items()}, declared, registry,
        {a: _session_reasons(dj, a) for a in usable})
    for name, body in generated.items():
        if name in tasks:
            problems.append(f"WELLKEPT['tasks'][{name!r}]: this name is taken by a built-in "
                            f"maintenance task of database {body['target']!r}; rename the "
                            "task")
        tasks.setdefault(name, body)
    alerts = _alerts(dj, wk.get("alerts"), problems)
    report_channels = _report_channels(dj)
    flags = {f: bool(getattr(dj, f, False)) for f in ("ENABLE_BACKUP_TESTING",
                                                      "ENABLE_DISASTER_RECOVERY")}
    for flag in REPORT_FLAGS:
        flags[flag] = bool(getattr(dj, flag, False))
        if flags[flag] and not report_channels and not alerts.get("channels"):
            flags[flag] = False
            issues.append(Issue("warning", "wellkept.W004",
                                f"{flag} is on, but no report is sent: "
                                "MAINTENANCE_NOTIFICATION_EMAILS is empty",
                                "list the recipients in MAINTENANCE_NOTIFICATION_EMAILS (or "
                                "give WELLKEPT['alerts'] channels)"))
    schedules = maintenance_schedules(
        getattr(dj, "CUSTOM_MAINTENANCE_SCHEDULES", None), flags=flags, plans=plans,
        declared={d.name: d.targets for d in declared}, report_channels=report_channels,
        tasks=tasks, problems=problems)
    own = wk.get("schedules") or {}
    if isinstance(own, Mapping):
        schedules.update(own)
    else:
        problems.append("WELLKEPT['schedules'] must be a dict of schedules")
    raw.update(tasks=tasks, schedules=schedules, alerts=alerts)
    raw["state"], state_alias = _state(wk.get("state"), databases, problems, issues)
    issues += [Issue("error", "wellkept.E001", p) for p in problems]
    try:
        settings = settings_from_mapping(raw, source=SOURCE, base_dir=base_dir,
                                         registry=registry)
    except ConfigError as exc:
        names = origins.Names(rules={r.name for r in rules}, declared=set(wk.get("tasks") or {})
                              if isinstance(wk.get("tasks"), Mapping) else set(),
                              custom=set(getattr(dj, "CUSTOM_MAINTENANCE_SCHEDULES", None)
                                         or {}), own_schedules=set(own)
                              if isinstance(own, Mapping) else set(), databases=set(usable))
        issues += [Issue("error", "wellkept.E001", origins.locate(p, names))
                   for p in exc.problems]
        return Built(None, issues)
    if problems:
        return Built(None, issues)
    return Built(DjangoConfig(settings, databases, plans, state_alias), issues)


def history_alias(django_settings: Any = None) -> str | None:
    """Only the alias holding wellkept's history (cheap: no config is validated)."""
    return history_state(django_settings)[1]


def history_state(django_settings: Any = None) -> tuple[str, str | None]:
    """The history's URL, and the alias holding it if it is one of ``DATABASES`` (cheap: no
    config is validated)."""
    if django_settings is None:
        from django.conf import settings as django_settings
    wk = getattr(django_settings, "WELLKEPT", {}) or {}
    state = wk.get("state") if isinstance(wk, Mapping) else None
    databases = database_targets(getattr(django_settings, "DATABASES", {}) or {})
    return _state(state, databases, [], [])


def _database_warnings(databases: dict[str, DatabaseTarget]) -> list[Issue]:
    out = []
    for alias, db in databases.items():
        if db.problem:
            out.append(Issue("warning", "wellkept.W001",
                             f"DATABASES[{alias!r}] is not maintained: {db.problem}",
                             "manage.py maintenance --database refuses it; nothing else is "
                             "affected"))
        if db.dropped_options:
            out.append(Issue("warning", "wellkept.W002",
                             f"DATABASES[{alias!r}]['OPTIONS']: wellkept does not use "
                             f"{', '.join(db.dropped_options)}",
                             "its sessions connect with NAME, USER, PASSWORD, HOST, PORT and "
                             "libpq's SSL and service options only"))
    return out


def _targets(usable: dict[str, DatabaseTarget], extra: Any,
             problems: list[str]) -> dict[str, Any]:
    targets: dict[str, Any] = {alias: {"url": db.url} for alias, db in usable.items()}
    if extra is None:
        return targets
    if not isinstance(extra, Mapping):
        problems.append("WELLKEPT['targets'] must be a dict of targets")
        return targets
    for name, body in extra.items():
        if name in targets and isinstance(body, Mapping):
            if "url" in body:
                problems.append(f"WELLKEPT['targets'][{name!r}]['url']: the database {name!r} "
                                "is reached as DATABASES says; here set only its timeout, "
                                "lock_timeout or statement_timeout")
                continue
            targets[name] = {**targets[name], **body}
        else:
            targets[name] = body
    return targets


def _declared_tasks(value: Any, problems: list[str]
                    ) -> tuple[dict[str, Any], list[Declared]]:
    """``WELLKEPT['tasks']`` without the integration's own ``operation`` key, and what each
    task carries out."""
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        problems.append("WELLKEPT['tasks'] must be a dict of task instances")
        return {}, []
    tasks: dict[str, Any] = {}
    declared = []
    for name, body in value.items():
        if not isinstance(body, Mapping):
            tasks[name] = body  # the validator names the problem
            continue
        body = dict(body)
        operation = body.pop("operation", None)
        kind = str(body.get("kind", ""))
        if operation is not None and operation not in OPERATIONS:
            problems.append(f"WELLKEPT['tasks'][{name!r}]['operation']: {operation!r} is not "
                            f"an operation; choose one of: {', '.join(OPERATIONS)}")
        elif operation is None:
            operation = (cleanup_operation(body.get("table")) if kind == "cleanup"
                         else KIND_OPERATION.get(kind))
        many = body.get("targets")
        targets = tuple(str(t) for t in many) if isinstance(many, list) else (
            (str(body["target"]),) if body.get("target") else ())
        tasks[name] = body
        declared.append(Declared(str(name), kind, targets, operation))
    return tasks, declared


def _session_reasons(dj: Any, alias: str) -> dict[str, str]:
    """Why the sessions operation has nothing to clean on ``alias``, if it has not."""
    if "django.contrib.sessions" not in list(getattr(dj, "INSTALLED_APPS", [])):
        return {"sessions": "django.contrib.sessions is not in INSTALLED_APPS"}
    engine = getattr(dj, "SESSION_ENGINE", SESSION_BACKENDS[0])
    if engine not in SESSION_BACKENDS:
        return {"sessions": f"SESSION_ENGINE {engine!r} keeps no sessions in the database"}
    home = _sessions_database()
    if home is not None and home != alias:
        return {"sessions": f"sessions are stored in database {home!r} (where the database "
                            f"routers send them), not in {alias!r}"}
    return {}


def _sessions_database() -> str | None:
    """The alias Django writes sessions to (the routers' choice), when the apps are loaded."""
    try:
        from django.apps import apps
        from django.db import router

        if not apps.ready:
            return None
        from django.contrib.sessions.models import Session

        return str(router.db_for_write(Session))
    except Exception:  # no routers to ask: the default database
        return None


def _emails(dj: Any) -> list[str] | None:
    """MAINTENANCE_NOTIFICATION_EMAILS as a list, or None when it is not a list of
    addresses."""
    emails = getattr(dj, "MAINTENANCE_NOTIFICATION_EMAILS", None) or []
    if isinstance(emails, str):
        emails = [emails]
    if not isinstance(emails, list | tuple) or not all(isinstance(e, str) and "@" in e
                                                        for e in emails):
        return None
    return list(emails)


def _report_channels(dj: Any) -> list[str]:
    """Where the reports go: MAINTENANCE_NOTIFICATION_EMAILS, through Django's email backend
    (whatever SEND_MAINTENANCE_ALERTS says); none: the alert channels."""
    from wellkept.contrib.django.email import channel_url

    emails = _emails(dj)
    return [channel_url(emails)] if emails else []


def _alerts(dj: Any, value: Any, problems: list[str]) -> dict[str, Any]:
    if value is not None and not isinstance(value, Mapping):
        problems.append("WELLKEPT['alerts'] must be a dict (channels, cooldown, thresholds)")
        value = None
    alerts = dict(value or {})
    emails = _emails(dj)
    if emails is None:
        problems.append("MAINTENANCE_NOTIFICATION_EMAILS must be a list of email addresses")
    elif emails and getattr(dj, "SEND_MAINTENANCE_ALERTS", True):
        from wellkept.contrib.django.email import channel_url

        alerts["channels"] = [*alerts.get("channels", []), channel_url(emails)]
    seeded: dict[str, dict[str, Any]] = {}
    for setting, (name, level) in THRESHOLDS.items():
        if hasattr(dj, setting):
            seeded.setdefault(name, {})[level] = getattr(dj, setting)
    if seeded:
        own = alerts.get("thresholds") or {}
        merged = {n: {**seeded.get(n, {}), **(own.get(n) or {})}
                  for n in {*seeded, *own}} if isinstance(own, Mapping) else own
        alerts["thresholds"] = merged
    return alerts


def _state(value: Any, databases: dict[str, DatabaseTarget], problems: list[str],
           issues: list[Issue]) -> tuple[str, str | None]:
    """The state store's URL, and the alias it lives in (for the admin)."""
    if value is None:
        default = databases.get("default")
        if default is not None and default.usable and default.vendor in ("postgresql",
                                                                          "sqlite"):
            return default.url, "default"
        issues.append(Issue("warning", "wellkept.W003", (
            f"wellkept keeps its history in {DEFAULT_STATE.split(':///', 1)[1]} under BASE_DIR, "
            "since the default database is not PostgreSQL or SQLite; the admin cannot show "
            "the runs"), "set WELLKEPT['state'] to a PostgreSQL or SQLite alias of DATABASES"))
        return DEFAULT_STATE, None
    if not isinstance(value, str):
        problems.append("WELLKEPT['state'] must be a URL or an alias of DATABASES")
        return DEFAULT_STATE, None
    if "://" in value:
        found = next((a for a, d in databases.items() if d.url and d.url == value), None)
        if found is None:
            issues.append(Issue("warning", "wellkept.W003",
                                "WELLKEPT['state'] is not one of DATABASES; the admin cannot "
                                "show the runs", "give the alias of the database instead"))
        return value, found
    db = databases.get(value)
    if db is None or not db.usable or db.vendor not in ("postgresql", "sqlite"):
        why = ("there is no such alias in DATABASES" if db is None else db.problem
               or f"it is a {db.vendor} database")
        problems.append(f"WELLKEPT['state']: {value!r} cannot hold wellkept's history ({why}); "
                        "name a PostgreSQL or SQLite alias, or give a URL")
        return DEFAULT_STATE, None
    return db.url, value
