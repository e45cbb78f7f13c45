"""The coordinator's schedules in a project with several databases: a schedule for one
database runs there and nowhere else, even when a cleanup rule or a declared task covers
several databases; and the report schedules that SEND_MAINTENANCE_REPORTS and
SEND_WEEKLY_MAINTENANCE_REPORTS turn on."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.django_app import data
from tests.helpers import wait_for


def _wait(check: Any, seconds: float = 60) -> bool:
    return wait_for(check, seconds)


def test_a_schedule_for_one_database_leaves_the_others_alone(
        django_project: dict[str, str], tmp_path: Path) -> None:
    """The test project's three rules list both ``default`` and ``lite``. The coordinator
    fires ``daily_maintenance`` (a schedule for ``default``), as ``wellkept schedule
    trigger`` asks it to: the old rows go from ``default``, and ``lite`` keeps every row."""
    from tests.django_app.drive import start_coordinator, wrote_its_pid
    from wellkept.contrib.django.conf import load
    from wellkept.history import coordination
    from wellkept.history.store import HistoryStore
    from wellkept.records import utcnow

    data.seed("default")
    lite_before = data.seed("lite")
    store = HistoryStore(load().settings.state)
    pidfile = tmp_path / "coordinator.pid"
    proc = start_coordinator(pidfile)
    try:
        assert _wait(lambda: wrote_its_pid(pidfile, proc))
        request = coordination.add_request(store, "schedule", "daily_maintenance", "manual",
                                           utcnow(), "test")
        assert _wait(lambda: (coordination.get_request(store, request) or {})
                     .get("finished_at") is not None, 120)
        run_ids = (coordination.get_request(store, request) or {})["run_ids"]
        runs = [store.get_run(run_id) for run_id in run_ids]
    finally:
        store.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # in the databases themselves: default cleaned, lite untouched
    after = data.counts("default")
    assert after["admin_log"] == data.RECENT_ADMIN_LOG
    assert after["audit"] == data.RECENT_AUDIT
    assert after["tasks_all"] == data.LATELY_DELETED + data.LIVE_TASKS
    assert data.counts("lite") == lite_before
    # and in the history: every run of the schedule was on default
    assert runs and all(r is not None for r in runs)
    ran = {(r.task, r.target) for r in runs if r is not None}
    assert {t for _, t in ran} == {"default"}, sorted(ran)
    assert {"admin_logentry", "audit_log", "failed_tasks"} <= {task for task, _ in ran}


LITE_SCHEDULES = {
    "lite_daily": {"database_alias": "lite", "task_type": "daily",
                   "schedule_cron": "30 2 * * *"},
    "lite_weekly": {"database_alias": "lite", "task_type": "weekly",
                    "schedule_cron": "30 3 * * 0"},
    "lite_failed_tasks": {"database_alias": "lite", "task_type": "failed_tasks",
                          "schedule_cron": "0 1 * * *"},
    "failed_tasks_default": {"task_type": "failed_tasks", "schedule_cron": "0 1 * * *"},
    "lite_analyze": {"task_type": "lite-analyze", "schedule_cron": "0 1 * * *"},
}


def test_every_schedule_runs_on_its_own_database_only(django_project: dict[str, str]) -> None:
    """What each schedule would run, as the coordinator resolves it: a schedule for a database
    lists that database's part of each rule and task covering several (``NAME@ALIAS``), and
    the built-in instances of that database."""
    from django.conf import settings as dj_settings
    from django.test import override_settings

    from wellkept.contrib.django.conf import load
    from wellkept.engine import Engine

    wk = {**dj_settings.WELLKEPT, "tasks": {**dj_settings.WELLKEPT["tasks"],
                                            "lite-analyze": {"kind": "analyze", "target": "lite"}}}
    with override_settings(CUSTOM_MAINTENANCE_SCHEDULES=LITE_SCHEDULES, WELLKEPT=wk):
        settings = load().settings
    engine = Engine(settings)
    try:
        def targets(schedule: str) -> list[tuple[str, str]]:
            return [(r.task, r.target) for r in engine.resolve(schedule=schedule)]

        for name in ("daily_maintenance", "weekly_optimization", "monthly_deep_maintenance"):
            assert {t for _, t in targets(name)} == {"default"}, (name, targets(name))
        assert settings.schedules["lite_daily"].tasks == [
            "admin_logentry@lite", "audit_log@lite", "failed_tasks@lite", "vacuum@lite",
            "stats@lite"]
        assert targets("lite_daily") == [
            ("admin_logentry", "lite"), ("audit_log", "lite"), ("failed_tasks", "lite"),
            ("vacuum@lite", "lite"), ("stats@lite", "lite")]
        assert {t for _, t in targets("lite_weekly")} == {"lite"}
        assert ("app-backup", "lite") in targets("lite_weekly")
        # a rule or task named as the task type: on the schedule's database (default
        # unless given); one that is not on default, without database_alias, where it is
        assert targets("lite_failed_tasks") == [("failed_tasks", "lite")]
        assert targets("failed_tasks_default") == [("failed_tasks", "default")]
        assert targets("lite_analyze") == [("lite-analyze", "lite")]
    finally:
        engine.store.close()


def test_a_schedule_naming_a_rule_for_other_databases_is_a_check_error(
        django_project: dict[str, str]) -> None:
    from django.test import override_settings

    from wellkept.contrib.django.checks import check_settings

    wrong = {"shop_failed": {"database_alias": "shop", "task_type": "failed_tasks",
                             "schedule_cron": "0 1 * * *"}}
    with override_settings(CUSTOM_MAINTENANCE_SCHEDULES=wrong):
        found = [f"{m.id} {m.msg}" for m in check_settings()]
    assert ("wellkept.E001 CUSTOM_MAINTENANCE_SCHEDULES['shop_failed']['task_type']: "
            "'failed_tasks' does not run on database 'shop'; as database_alias, choose one of: "
            "default, lite") in found, found


def test_maintenance_reports_are_mailed_to_the_notification_emails(
        django_project: dict[str, str]) -> None:
    """SEND_MAINTENANCE_REPORTS and SEND_WEEKLY_MAINTENANCE_REPORTS turn on a daily and a
    weekly report schedule; each mails wellkept's report to MAINTENANCE_NOTIFICATION_EMAILS
    through Django's email backend (whatever SEND_MAINTENANCE_ALERTS says)."""
    from django.core import mail
    from django.test import override_settings

    from tests.django_app.drive import call
    from wellkept.contrib.django.conf import load
    from wellkept.engine import Engine
    from wellkept.types import RunStatus

    data.seed("default")
    call("--operation", "sessions")  # something for the report to tell
    with override_settings(SEND_MAINTENANCE_REPORTS=True, SEND_WEEKLY_MAINTENANCE_REPORTS=True,
                           SEND_MAINTENANCE_ALERTS=False):
        settings = load().settings
    daily, weekly = (settings.schedules[n] for n in ("daily_maintenance_report",
                                                     "weekly_maintenance_report"))
    assert (daily.enabled, daily.cron, daily.tasks) == (True, "0 7 * * *", ["daily_report"])
    assert (weekly.enabled, weekly.cron, weekly.tasks) == (True, "0 7 * * 1", ["weekly_report"])
    assert settings.alerts.channels == []  # alerts off, reports on
    mail.outbox = []
    engine = Engine(settings)
    try:
        (record,) = engine.run(engine.resolve(schedule="daily_maintenance_report")).results
        (weekly_record,) = engine.run(engine.resolve(schedule="weekly_maintenance_report")
                                      ).results
    finally:
        engine.store.close()
    assert record.status is RunStatus.COMPLETED, record.message
    assert weekly_record.status is RunStatus.COMPLETED, weekly_record.message
    subjects = [m.subject for m in mail.outbox]
    assert len(mail.outbox) == 2, subjects
    sent = mail.outbox[0]
    assert sent.subject.startswith("[wellkept] daily report: ")
    assert mail.outbox[1].subject.startswith("[wellkept] weekly report: ")
    assert sent.to == ["dba@example.com", "devops@example.com"]
    html = [content for content, media in sent.alternatives if media == "text/html"]
    assert html and "sessions" in html[0]


def test_reports_with_nowhere_to_go_are_a_warning(django_project: dict[str, str]) -> None:
    from django.test import override_settings

    from wellkept.contrib.django.checks import check_settings
    from wellkept.contrib.django.conf import load

    with override_settings(SEND_MAINTENANCE_REPORTS=True, MAINTENANCE_NOTIFICATION_EMAILS=[]):
        found = [f"{m.id} {m.msg}" for m in check_settings()]
        settings = load().settings
    assert ("wellkept.W004 SEND_MAINTENANCE_REPORTS is on, but no report is sent: "
            "MAINTENANCE_NOTIFICATION_EMAILS is empty") in found, found
    assert settings.schedules["daily_maintenance_report"].enabled is False
