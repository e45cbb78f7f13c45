"""The read-only admin over wellkept's runs, alerts through Django's email backend, MySQL."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from tests.django_app import data
from tests.django_app.drive import call, records


def test_the_admin_shows_runs_read_only(django_project: dict[str, str]) -> None:
    from django.contrib.auth.models import User

    data.seed("default")
    report = call("--operation", "sessions")
    run_id = records(report, "sessions")[0]["run_id"]
    user, _ = User.objects.get_or_create(username="staff-admin",
                                         defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    listing = client.get("/admin/wellkept/taskexecutionlog/?status=completed")
    assert listing.status_code == 200
    assert run_id.encode() in listing.content and b"sessions" in listing.content
    page = client.get(f"/admin/wellkept/taskexecutionlog/{run_id}/change/")
    assert page.status_code == 200
    assert b"rows_deleted" in page.content and b"Save" not in page.content
    assert client.get("/admin/wellkept/taskexecutionlog/add/").status_code == 403
    assert client.post(f"/admin/wellkept/taskexecutionlog/{run_id}/delete/",
                       {"post": "yes"}).status_code == 403
    from wellkept.contrib.django.models import TaskExecutionLog

    assert TaskExecutionLog.objects.filter(run_id=run_id).exists()  # still there
    # staff see the runs only with the view permission (Django made it for the model)
    from django.contrib.auth.models import Permission

    staff, _ = User.objects.get_or_create(username="staff-only", defaults={"is_staff": True})
    client.force_login(staff)
    assert client.get("/admin/wellkept/taskexecutionlog/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_taskexecutionlog"))
    staff = User.objects.get(pk=staff.pk)  # a fresh permission cache
    client.force_login(staff)
    assert client.get("/admin/wellkept/taskexecutionlog/").status_code == 200


def _failing_rules() -> dict[str, Any]:
    return {"ghost": {"table": "no_such_table", "date_column": "created_at",
                      "retention_days": 1, "operation": "logs"}}


def test_a_failed_run_alerts_the_notification_emails(django_project: dict[str, str]) -> None:
    mail.outbox = []  # the locmem backend appends here
    with override_settings(DATABASE_CLEANUP_RULES=_failing_rules()), \
            pytest.raises(CommandError):
        call_command("maintenance", "--operation", "logs", stdout=StringIO())
    sent = [m for m in mail.outbox if "task_failure" in m.subject and "ghost" in m.subject]
    assert sent, [m.subject for m in mail.outbox]
    assert sent[0].to == ["dba@example.com", "devops@example.com"]
    assert sent[0].from_email == "wellkept@example.com"  # DEFAULT_FROM_EMAIL
    assert "no_such_table" in sent[0].body


def test_alert_emails_go_out_through_the_smtp_backend(django_project: dict[str, str]) -> None:
    from tests.servers import smtp_capture

    with smtp_capture() as (port, received), override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port, MAINTENANCE_NOTIFICATION_EMAILS=["oncall@example.com"],
            DATABASE_CLEANUP_RULES={"ghost2": {**_failing_rules()["ghost"]}}), \
            pytest.raises(CommandError):
        call_command("maintenance", "--operation", "logs", stdout=StringIO())
    mine = [m for m in received if "ghost2" in str(m["msg"]["Subject"])]
    assert mine and mine[0]["to"] == ["oncall@example.com"]


def test_mysql_database_vacuum_is_optimize_and_sessions_are_cleaned(
        django_project: dict[str, str]) -> None:
    """MariaDB as a Django database (its tables made here: the project's Django has no MySQL
    driver, and wellkept does not use Django's connections anyway)."""
    import pymysql

    from wellkept.contrib.django.conf import load

    name = load().databases["shop"].name
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=name,
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS django_session")
        cur.execute("CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, "
                    "session_data longtext NOT NULL, expire_date datetime(6) NOT NULL, "
                    "KEY (expire_date))")
        cur.execute("INSERT INTO django_session VALUES ('old', 'x', NOW() - INTERVAL 2 DAY), "
                    "('new', 'x', NOW() + INTERVAL 2 DAY)")
    try:
        with override_settings(TEST_SESSIONS_DATABASE="shop"):
            report = call("--operation", "vacuum", "--operation", "sessions", "--operation",
                          "views", database="shop")
        assert records(report, "vacuum")[0]["kind"] == "optimize"
        assert report["vacuum"]["status"] == "completed", report["vacuum"]
        assert report["sessions"]["rows_processed"] == 1
        assert report["views"]["status"] == "skipped"
        assert report["metadata"]["engine"] == "mysql"
        with conn.cursor() as cur:
            cur.execute("SELECT session_key FROM django_session")
            assert cur.fetchall() == (("new",),)
    finally:
        conn.close()


ADMIN_LIST = (
    "from django.contrib.auth.models import User; from django.test import Client; "
    "user = User.objects.create_superuser('root', 'root@example.com', 'x'); "
    "client = Client(raise_request_exception=False); client.force_login(user); "
    "page = client.get('/admin/wellkept/taskexecutionlog/'); "
    "print(page.status_code, b'0 task execution logs' in page.content)")


def test_a_new_projects_admin_lists_no_runs_before_the_first_one(
        django_project: dict[str, str], tmp_path: Path) -> None:
    """A new project: migrate, then open the admin before any maintenance has run. migrate
    made wellkept's history tables too, so the page lists no runs (rather than failing on a
    missing wk_runs table)."""
    import sqlite3

    from tests.django_app.drive import manage

    fresh = {"DJANGO_SETTINGS_MODULE": "tests.django_app.settings_sqlite",
             "WELLKEPT_DJANGO_DIR": str(tmp_path)}
    migrated = manage("migrate", "-v", "0", extra_env=fresh)
    assert migrated.returncode == 0, migrated.stderr
    conn = sqlite3.connect(tmp_path / "only.sqlite3")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "wk_runs" in tables
    shown = manage("shell", "-c", ADMIN_LIST, extra_env=fresh)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == "200 True", shown.stdout + shown.stderr
    again = manage("migrate", "-v", "0", extra_env=fresh)  # a second migrate leaves them be
    assert again.returncode == 0, again.stderr
