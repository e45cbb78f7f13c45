"""The Django settings as a wellkept config: targets from DATABASES (the password a secret),
and every mistake a system check error naming the setting and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from wellkept.contrib.django.databases import database_target
from wellkept.redact import redact


def test_database_urls_carry_every_connection_setting_and_mask_the_password() -> None:
    pg = database_target("default", {
        "ENGINE": "django.db.backends.postgresql", "NAME": "app", "USER": "app",
        "PASSWORD": "s3cr$t/@:x", "HOST": "db.internal", "PORT": 6432,
        "OPTIONS": {"sslmode": "require", "options": "-c search_path=app", "pool": True}})
    assert pg.url == ("postgresql://app:s3cr%24t%2F%40%3Ax@db.internal:6432/app"
                      "?sslmode=require")
    assert pg.dropped_options == ["options", "pool"]
    assert "s3cr" not in redact(f"failed: {pg.url} (password s3cr$t/@:x)")
    socket = database_target("s", {"ENGINE": "django.contrib.gis.db.backends.postgis",
                                   "NAME": "geo", "HOST": "/run/postgresql"})
    assert socket.url == "postgresql:///geo?host=%2Frun%2Fpostgresql"
    my = database_target("shop", {"ENGINE": "django.db.backends.mysql", "NAME": "shop",
                                  "USER": "root", "HOST": "", "PORT": "3307"})
    assert my.url == "mysql://root@127.0.0.1:3307/shop"
    assert database_target("m", {"ENGINE": "django.db.backends.mysql", "NAME": "x",
                                 "HOST": "/var/run/mysqld/mysqld.sock"}).problem
    lite = database_target("lite", {"ENGINE": "django.db.backends.sqlite3",
                                    "NAME": "relative.sqlite3"})
    assert lite.url.startswith("sqlite:////") and lite.url.endswith("/relative.sqlite3")
    memory = database_target("mem", {"ENGINE": "django.db.backends.sqlite3",
                                     "NAME": ":memory:"})
    assert memory.problem and "in-memory" in memory.problem
    odd = database_target("o", {"ENGINE": "vendor.backend"}, vendor_of=lambda alias: "oracle")
    assert odd.problem and "is not one wellkept maintains" in odd.problem
    wrapped = database_target("w", {"ENGINE": "tenants.postgresql_backend", "NAME": "t"},
                              vendor_of=lambda alias: "postgresql")
    assert wrapped.url == "postgresql:///t"


def _messages(**settings: Any) -> list[str]:
    from wellkept.contrib.django.checks import check_settings

    with override_settings(**settings):
        return [f"{m.id} {m.msg}" for m in check_settings()]


def test_the_test_projects_settings_pass_the_checks(django_project: dict[str, str]) -> None:
    assert [m for m in _messages() if "E0" in m] == []
    call_command("check")  # and Django's own check command runs them


def test_mistakes_are_check_errors_naming_the_setting_and_key(
        django_project: dict[str, str]) -> None:
    from django.conf import settings

    rules = {**settings.DATABASE_CLEANUP_RULES,
             "bad_days": {"table": "t", "date_column": "c", "retention_days": "ninety"},
             "nowhere": {"table": "t", "date_column": "c", "retention_days": 1,
                         "database_alias": "archive"},
             "wrong_op": {"table": "t", "date_column": "c", "retention_days": 1,
                          "operation": "vacuum"},
             "bad_type": {"table": "t", "date_column": "c", "retention_days": 1,
                          "cleanup_type": "purge"}}
    schedules = {"hourly": {"task_type": "health_check", "schedule_cron": "61 * * * *"},
                 "odd": {"task_type": "defragment", "schedule_cron": "0 1 * * *"},
                 "weekly_optimization": {"enabled": False},      # a default: fine
                 "hourly_health_check": {"enabled": False}}      # not a default
    wk = {**settings.WELLKEPT, "tasks": {**settings.WELLKEPT["tasks"],
                                         "nightly": {"kind": "vacuum", "target": "default",
                                                     "min_dead_percent": 500}},
          "targets": {"default": {"url": "postgresql://elsewhere/db"}},
          "coordinatr": {}}
    found = _messages(DATABASE_CLEANUP_RULES=rules, CUSTOM_MAINTENANCE_SCHEDULES=schedules,
                      WELLKEPT=wk, MAINTENANCE_NOTIFICATION_EMAILS=["not-an-address"])
    text = "\n".join(found)
    assert all(m.startswith("wellkept.E001 ") for m in found), text
    expected = [
        "DATABASE_CLEANUP_RULES['bad_days']: retention_days must be a number of days",
        "DATABASE_CLEANUP_RULES['nowhere']['database_alias']: 'archive' is not a database",
        "DATABASE_CLEANUP_RULES['wrong_op']['operation']: 'vacuum' is not allowed; choose one "
        "of: cleanup, logs, sessions",
        "DATABASE_CLEANUP_RULES['bad_type']: cleanup_type: 'purge' is not allowed; choose one "
        "of: 'delete' or 'archive'",
        "CUSTOM_MAINTENANCE_SCHEDULES['odd']['task_type']: unknown task type 'defragment'",
        "CUSTOM_MAINTENANCE_SCHEDULES['hourly']['schedule_cron']:",
        "CUSTOM_MAINTENANCE_SCHEDULES['hourly_health_check']: required key(s) missing: "
        "task_type, schedule_cron (a new schedule needs both; an entry named like a default "
        "schedule changes only the keys it gives: daily_maintenance,",
        "WELLKEPT['tasks']['nightly']['min_dead_percent']:",
        "WELLKEPT['targets']['default']['url']: the database 'default' is reached as "
        "DATABASES says",
        "WELLKEPT['coordinatr']: unknown key; valid keys:",
        "MAINTENANCE_NOTIFICATION_EMAILS must be a list of email addresses",
    ]
    for piece in expected:
        assert piece in text, f"{piece!r} not in:\n{text}"
    with override_settings(DATABASE_CLEANUP_RULES=rules), \
            pytest.raises(SystemCheckError, match="retention_days must be a number of days"):
        call_command("check")


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_databases_wellkept_leaves_out_are_warnings(django_project: dict[str, str]) -> None:
    from django.conf import settings

    databases = {**settings.DATABASES,
                 "memory": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
                 "pooled": {**settings.DATABASES["default"], "OPTIONS": {"pool": True}}}
    found = _messages(DATABASES=databases)
    assert "wellkept.W001 DATABASES['memory'] is not maintained: it is an in-memory SQLite " \
           "database, which no other connection can reach" in found
    assert "wellkept.W002 DATABASES['pooled']['OPTIONS']: wellkept does not use pool" in found
    found = _messages(WELLKEPT={**settings.WELLKEPT, "state": "shop"})
    assert any(m.startswith("wellkept.E001 WELLKEPT['state']: 'shop' cannot hold wellkept's "
                            "history (it is a mysql database)") for m in found), found


def test_the_config_is_one_wellkept_config(django_project: dict[str, str]) -> None:
    from wellkept.contrib.django.conf import load

    config = load()
    settings = config.settings
    assert set(settings.targets) == {"default", "lite", "shop", "host"}
    assert settings.state == settings.targets["default"].url and config.state_alias == "default"
    assert settings.tasks["admin_logentry"].params.mode == "archive"  # type: ignore[attr-defined]
    assert settings.tasks["admin_logentry"].targets == ["default", "lite"]
    assert settings.tasks["optimize@shop"].kind == "optimize"  # MySQL's vacuum
    assert config.plans["shop"]["vacuum"].tasks == ["optimize@shop"]
    assert "views" not in {t.kind for t in settings.tasks.values() if t.target == "shop"}
    assert settings.alerts.channels == [
        "django-email://?to=dba@example.com,devops@example.com"]
    assert settings.schedules["hourly_health_check"].cron == "0 * * * *"
    with override_settings(DB_ALERT_QUERY_TIME_WARNING=1.5, DB_ALERT_DISK_WARNING=70):
        thresholds = load().settings.alerts.thresholds
    assert thresholds["query_seconds"].warning == 1.5
    assert thresholds["disk_percent"].warning == 70


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_a_database_that_is_down_fails_its_runs_and_never_prints_its_password(
        django_project: dict[str, str]) -> None:
    """A real fault: a port with nothing listening, and a password with URL characters."""
    import json
    from io import StringIO

    from django.conf import settings
    from django.core.management import CommandError

    from tests.helpers import free_port

    secret = "Pa$$/w@rd:42"
    down = {**settings.DATABASES["default"], "PASSWORD": secret, "PORT": free_port()}
    out, err = StringIO(), StringIO()
    with override_settings(DATABASES={**settings.DATABASES, "down": down}), \
            pytest.raises(CommandError) as caught:
        call_command("maintenance", "--operation", "stats", "--operation", "vacuum",
                     "--database", "down", "--output", "json", stdout=out, stderr=err)
    assert caught.value.returncode == 1
    report = json.loads(out.getvalue())
    assert report["stats"]["status"] == report["vacuum"]["status"] == "failed"
    assert "cannot connect" in report["stats"]["message"]
    printed = out.getvalue() + err.getvalue() + str(caught.value)
    assert secret not in printed and "Pa$$" not in printed and "Pa%24%24" not in printed


def test_a_settings_mistake_stops_each_command_with_exit_code_2(
        django_project: dict[str, str], tmp_path: Path) -> None:
    """Through manage.py, Django's system checks run first; a mistake they find means nothing
    ran, which wellkept's commands report as 2 (a usage or settings error), not 1 (a run
    failed)."""
    from tests.django_app import data
    from tests.django_app.drive import manage

    before = data.seed("default")
    broken = {"DJANGO_SETTINGS_MODULE": "tests.django_app.settings_broken"}
    for args in (("maintenance", "--operation", "sessions"), ("maintenance_status",),
                 ("start_maintenance_coordinator", "--pidfile", str(tmp_path / "c.pid"))):
        done = manage(*args, extra_env=broken, timeout=60)
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        assert "wellkept.E001" in done.stderr
        assert "DATABASE_CLEANUP_RULES['bad_days']: retention_days must be a number of days" \
            in done.stderr
    assert data.counts("default") == before  # nothing ran
    assert not (tmp_path / "c.pid").exists()
