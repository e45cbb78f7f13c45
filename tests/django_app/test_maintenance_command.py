"""``manage.py maintenance`` on a real Django project, on PostgreSQL (``default``) and SQLite
(``lite``), checked in the databases themselves.

Seed 002's 30 test cases, and the tests here that cover each one:

TestMaintenanceCommand
 1. test_command_requires_operation          -> test_an_operation_is_required
 2. test_help_shows_all_operations           -> test_help_lists_the_nine_operations
 3. test_vacuum_operation_dry_run            -> test_dry_run_of_each_operation[vacuum]
 4. test_reindex_operation_dry_run           -> test_dry_run_of_each_operation[reindex]
 5. test_cleanup_operation_dry_run           -> test_dry_run_of_each_operation[cleanup]
 6. test_logs_operation_dry_run              -> test_dry_run_of_each_operation[logs]
 7. test_logs_operation_deletes_old_logs
      -> test_logs_archives_old_admin_log_and_deletes_old_audit_rows
 8. test_sessions_operation_dry_run          -> test_dry_run_of_each_operation[sessions]
 9. test_sessions_operation_cleans_expired   -> test_sessions_deletes_the_expired_sessions
10. test_json_output_format                  -> test_json_output_has_seed_002s_shape
11. test_all_operations_flag
      -> test_all_runs_the_nine_operations_and_the_backup_restores
12. test_cleanup_operation_handles_failed_tasks
      -> test_cleanup_archives_failed_tasks_soft_deleted_long_ago
13. test_stats_operation_returns_table_info  -> test_stats_reports_the_largest_tables
14. test_bloat_operation_dry_run             -> test_dry_run_of_each_operation[bloat]
15. test_backup_operation_skips_for_sqlite
      -> test_operations_an_engine_lacks_are_skipped_with_the_reason
    (wellkept backs SQLite up with its online backup API, so on SQLite ``backup`` makes a
    backup that restores, in test_all_runs_the_nine_operations_and_the_backup_restores[lite];
    what SQLite lacks, reindex, views and bloat, is skipped with the reason)
16. test_views_operation_dry_run             -> test_dry_run_of_each_operation[views]
17. test_output_includes_metadata            -> test_metadata_says_when_where_and_how
18. test_multiple_operations_in_sequence     -> test_operations_run_in_the_order_given
TestMaintenanceCommandEdgeCases
19. test_invalid_operation                   -> test_an_unknown_operation_is_refused
20. test_cleanup_batch_processing            -> test_cleanup_works_in_batches_with_a_checkpoint_each
21. test_dry_run_doesnt_modify_data          -> test_dry_run_of_all_operations_changes_nothing
22. test_concurrent_operations_lock_handling -> test_a_database_busy_with_another_run_is_skipped
23. test_logs_respects_different_age_limits  -> test_each_log_rule_keeps_its_own_retention
24. test_preserves_recent_logs               -> test_recent_log_rows_are_kept
TestMaintenanceCommandLogging
25. test_execution_is_logged                 -> test_every_run_is_in_the_history_and_the_orm
26. test_execution_log_records_success       -> test_every_run_is_in_the_history_and_the_orm
27. test_execution_log_includes_result_details -> test_the_log_keeps_the_results_details
TestMaintenanceCommandIntegration
28. test_postgresql_specific_operations
      -> test_postgresql_refreshes_views_concurrently_and_vacuums
29. test_command_completes_without_errors    -> test_each_operation_through_manage_py[…],
                                                test_all_through_manage_py_on_sqlite
30. test_mixed_format_and_operation_options  -> test_operations_schedule_and_text_output_combine
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.django_app import data
from tests.django_app.drive import call, call_failing, manage, manage_json, records
from wellkept.contrib.django.operations import OPERATIONS, PROFILES

NINE = list(OPERATIONS)
#: what SQLite has no use for (or no such thing)
NOT_ON_SQLITE = {"reindex", "views", "bloat"}


def _unchanged(alias: str, before: dict[str, Any]) -> None:
    assert data.counts(alias) == before


def _files(folder: Path) -> set[Path]:
    """Every file under ``folder`` (backups, archives): a dry run must add none."""
    return {p for p in folder.rglob("*") if p.is_file()}


# --- TestMaintenanceCommand ---------------------------------------------------------------------


def test_an_operation_is_required(django_project: dict[str, str]) -> None:
    with pytest.raises(CommandError, match="--operation NAME") as caught:
        call_command("maintenance")
    assert caught.value.returncode == 2
    done = manage("maintenance")
    assert done.returncode == 2 and "--operation NAME" in done.stderr, done.stderr


def test_help_lists_the_nine_operations(django_project: dict[str, str]) -> None:
    done = manage("maintenance", "--help")
    assert done.returncode == 0, done.stderr
    for op in OPERATIONS.values():
        assert op.name in done.stdout and op.label in done.stdout
    for option in ("--operation", "--all", "--dry-run", "--output", "--schedule", "--database"):
        assert option in done.stdout
    for cadence, ops in PROFILES.items():
        assert f"{cadence}" in done.stdout and ", ".join(ops) in done.stdout


@pytest.mark.parametrize("operation", NINE)
def test_dry_run_of_each_operation(operation: str, alias: str, seeded: dict[str, Any],
                                   project_dir: Path) -> None:
    files = _files(project_dir)
    report = call("--operation", operation, "--dry-run", database=alias)
    entry = report[operation]
    runs = records(report, operation)
    assert runs and all(r["dry_run"] for r in runs)
    _unchanged(alias, seeded)
    assert _files(project_dir) == files
    if alias == "lite" and operation in NOT_ON_SQLITE:
        assert entry["status"] == "skipped"
        return
    assert entry["status"] == "completed", entry
    expected = {"sessions": data.EXPIRED_SESSIONS, "logs": data.OLD_ADMIN_LOG + data.OLD_AUDIT,
                "cleanup": data.LONG_DELETED}
    if operation in expected:
        assert entry["rows_matched"] == expected[operation]
        assert entry["rows_deleted"] == 0 and entry["rows_processed"] == 0
        assert entry["message"].count("would") == len(runs)
    if operation == "views":
        assert 'REFRESH MATERIALIZED VIEW CONCURRENTLY "public"."shop_daily_actions"' in \
            entry["message"]
    if operation == "backup":
        assert "would back up" in entry["message"]


def test_logs_archives_old_admin_log_and_deletes_old_audit_rows(alias: str,
                                                                seeded: dict[str, Any]) -> None:
    report = call("--operation", "logs", database=alias)
    entry = report["logs"]
    assert entry["status"] == "completed", entry
    assert entry["rows_deleted"] == data.OLD_ADMIN_LOG + data.OLD_AUDIT
    assert entry["rows_archived"] == data.OLD_ADMIN_LOG  # the admin log rule archives
    after = data.counts(alias)
    assert after["admin_log"] == data.RECENT_ADMIN_LOG
    assert after["django_admin_log_archive"] == data.OLD_ADMIN_LOG
    assert after["audit"] == data.RECENT_AUDIT
    assert set(entry["details"]) == {"admin_logentry", "audit_log"}


def test_sessions_deletes_the_expired_sessions(alias: str, seeded: dict[str, Any]) -> None:
    report = call("--operation", "sessions", database=alias)
    assert report["sessions"]["status"] == "completed"
    assert report["sessions"]["rows_processed"] == data.EXPIRED_SESSIONS
    after = data.counts(alias)
    assert after["sessions_expired"] == 0
    assert after["sessions_live"] == data.LIVE_SESSIONS


def test_json_output_has_seed_002s_shape(alias: str, seeded: dict[str, Any]) -> None:
    report = call("--operation", "vacuum", "--operation", "cleanup", database=alias)
    assert list(report) == ["vacuum", "cleanup", "metadata"]
    for op in ("vacuum", "cleanup"):
        entry = report[op]
        assert entry["operation"] == op and entry["status"] == "completed"
        assert entry["description"] == OPERATIONS[op].label
        assert isinstance(entry["message"], str) and entry["errors"] == []
        for run in entry["details"].values():
            assert {"run_id", "task", "kind", "target", "status", "started_at", "metrics",
                    "details", "errors"} <= set(run)
    assert report["cleanup"]["rows_processed"] == data.LONG_DELETED


def test_all_runs_the_nine_operations_and_the_backup_restores(
        alias: str, seeded: dict[str, Any], postgres_db: str, tmp_path: Path) -> None:
    report = call("--all", database=alias)
    assert list(report)[:-1] == NINE
    for op in NINE:
        expected = "skipped" if alias == "lite" and op in NOT_ON_SQLITE else "completed"
        assert report[op]["status"] == expected, report[op]
    after = data.counts(alias)
    assert after["sessions_expired"] == 0 and after["audit"] == data.RECENT_AUDIT
    assert after["admin_log"] == data.RECENT_ADMIN_LOG
    assert after["tasks_all"] == data.LATELY_DELETED + data.LIVE_TASKS
    backup = records(report, "backup")[0]
    assert backup["task"] == "app-backup"
    assert backup["details"]["verification"]["passed"] is True
    assert backup["details"]["verification"]["tier"] == "restore"
    # and restore it ourselves, into an empty database, and read the rows back
    from wellkept.backups.restore import restore_backup
    from wellkept.contrib.django.conf import load

    into = postgres_db if alias == "default" else f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    if alias == "lite":
        import sqlite3

        sqlite3.connect(tmp_path / "restored.sqlite3").close()
    restore_backup(load().settings, backup["details"]["backup_id"], into, replace=False, jobs=1)
    assert _count(into, "django_session") == data.LIVE_SESSIONS
    assert _count(into, "shop_auditlog") == data.RECENT_AUDIT


def _count(url: str, table: str) -> int:
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1])
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_cleanup_archives_failed_tasks_soft_deleted_long_ago(alias: str,
                                                            seeded: dict[str, Any]) -> None:
    from tests.django_app.shop.models import FailedTask

    report = call("--operation", "cleanup", database=alias)
    entry = report["cleanup"]
    assert entry["status"] == "completed"
    assert entry["rows_archived"] == entry["rows_deleted"] == data.LONG_DELETED
    names = sorted(FailedTask.all_objects.using(alias).values_list("name", flat=True))
    assert names == ["lately"] * data.LATELY_DELETED + ["live"] * data.LIVE_TASKS
    assert data.counts(alias)["shop_failedtask_archive"] == data.LONG_DELETED


def test_stats_reports_the_largest_tables(alias: str, seeded: dict[str, Any]) -> None:
    report = call("--operation", "stats", database=alias)
    run = records(report, "stats")[0]
    assert report["stats"]["status"] == "completed"
    from django.db import connections

    top = run["details"]["top_tables"]
    assert 0 < len(top) <= 10  # the top 10 by size, the kind's default
    real = set(connections[alias].introspection.table_names(include_views=True))
    assert {t.get("name") or t.get("table") for t in top} <= real | {"shop_daily_actions"}
    sizes = [t.get("bytes") or t.get("total_bytes") or 0 for t in top]
    assert sizes == sorted(sizes, reverse=True)
    assert report["stats"]["size_bytes"] > 0


def test_operations_an_engine_lacks_are_skipped_with_the_reason(django_project: dict[str, str],
                                                                ) -> None:
    report = call("--operation", "reindex", "--operation", "views", "--operation", "bloat",
                  database="lite")
    for op in ("reindex", "views", "bloat"):
        assert report[op]["status"] == "skipped"
        assert f"{op} does not apply to sqlite targets" in report[op]["message"]
        # named in the history as the database's other runs are (vacuum@lite)
        assert [r["task"] for r in records(report, op)] == [f"{op}@lite"]
    assert report["metadata"]["status"] == "skipped"


def test_metadata_says_when_where_and_how(alias: str, seeded: dict[str, Any]) -> None:
    report = call("--operation", "stats", "--dry-run", database=alias)
    meta = report["metadata"]
    assert meta["timestamp"].endswith("Z") and meta["duration_seconds"] >= 0
    assert meta["dry_run"] is True and meta["alias"] == alias
    if alias == "default":
        assert meta["engine"] == "postgresql" and meta["database"].startswith("wk_dj_")
    else:
        assert meta["engine"] == "sqlite" and meta["database"] == "lite.sqlite3"
    assert meta["summary"]["completed"] == 1 and meta["status"] == "completed"


def test_operations_run_in_the_order_given(alias: str, seeded: dict[str, Any]) -> None:
    from wellkept.contrib.django.models import TaskExecutionLog

    report = call("--operation", "stats", "--operation", "sessions", "--operation", "logs",
                  "--operation", "stats", database=alias)
    assert list(report) == ["stats", "sessions", "logs", "metadata"]
    ids = [r["run_id"] for op in ("stats", "sessions", "logs") for r in records(report, op)]
    logged = TaskExecutionLog.objects.filter(run_id__in=ids).order_by("started_at")
    assert [row.run_id for row in logged] == ids


# --- TestMaintenanceCommandEdgeCases ------------------------------------------------------------


def test_an_unknown_operation_is_refused(django_project: dict[str, str]) -> None:
    with pytest.raises(CommandError, match="invalid choice: 'defrag'"):
        call_command("maintenance", "--operation", "defrag")
    done = manage("maintenance", "--operation", "defrag")
    assert done.returncode == 2 and "invalid choice: 'defrag'" in done.stderr
    with pytest.raises(CommandError, match="unknown database 'nowhere'") as caught:
        call_command("maintenance", "--operation", "stats", "--database", "nowhere")
    assert caught.value.returncode == 2


def test_cleanup_works_in_batches_with_a_checkpoint_each(alias: str,
                                                         seeded: dict[str, Any]) -> None:
    from wellkept.contrib.django.conf import load
    from wellkept.history.store import HistoryStore

    report = call("--operation", "cleanup", database=alias)
    run = records(report, "cleanup")[0]
    assert run["metrics"]["batches"] == 3  # 5 rows, batch_size 2
    assert run["details"]["batch_sizes"] == {"first": 2, "min": 2, "max": 2, "last": 2}
    store = HistoryStore(load().settings.state)
    try:
        checkpoint = store.latest_checkpoint(run["run_id"])
    finally:
        store.close()
    assert checkpoint is not None and checkpoint["data"]["rows_deleted"] == data.LONG_DELETED


def test_dry_run_of_all_operations_changes_nothing(alias: str, seeded: dict[str, Any],
                                                   project_dir: Path) -> None:
    files = _files(project_dir)
    report = call("--all", "--dry-run", database=alias)
    assert report["metadata"]["dry_run"] is True
    assert all(r["dry_run"] for op in NINE for r in records(report, op))
    _unchanged(alias, seeded)  # no archive table either: counts() would list it
    assert _files(project_dir) == files


def test_a_database_busy_with_another_run_is_skipped(alias: str, seeded: dict[str, Any]) -> None:
    from django.test import override_settings

    from wellkept.contrib.django.conf import load
    from wellkept.registry import Registry

    config = load()
    target = config.settings.targets[alias]
    connector = Registry.default().connector_class(target.scheme)(alias, target)
    from wellkept.history.store import HistoryStore

    store = HistoryStore(config.settings.state)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another run's lock on the same database, in another thread
        with store.lock(f"target:{connector.identity()}", 5, {"task": "someone-else"}):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        quick = {**_wellkept(), "tasks": {**_wellkept()["tasks"], "sessions-quick": {
            "kind": "sessions", "targets": ["default", "lite"], "lock_wait": "1s"}}}
        with override_settings(WELLKEPT=quick):
            report = call("--operation", "sessions", "--operation", "stats", database=alias)
    finally:
        release.set()
        thread.join()
        store.close()
    assert report["sessions"]["status"] == "skipped"
    assert f"target {alias} is busy" in report["sessions"]["message"]
    assert report["stats"]["status"] == "completed"  # read-only: takes no lock
    assert data.counts(alias)["sessions_expired"] == data.EXPIRED_SESSIONS
    report = call("--operation", "sessions", database=alias)  # free again
    assert report["sessions"]["rows_processed"] == data.EXPIRED_SESSIONS


def _wellkept() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.WELLKEPT)


def test_each_log_rule_keeps_its_own_retention(alias: str, seeded: dict[str, Any]) -> None:
    from django.contrib.admin.models import LogEntry
    from django.utils import timezone

    from tests.django_app.shop.models import AuditLog

    sixty = timezone.now() - timedelta(days=60)
    entry = LogEntry.objects.using(alias).first()
    assert entry is not None
    LogEntry.objects.using(alias).filter(pk=entry.pk).update(action_time=sixty)
    before_audit = AuditLog.objects.using(alias).filter(created_at__lte=sixty).count()
    call("--operation", "logs", database=alias)
    # 60 days: past the audit log's 30, within the admin log's 90
    assert LogEntry.objects.using(alias).filter(pk=entry.pk).exists()
    assert before_audit == data.OLD_AUDIT
    assert not AuditLog.objects.using(alias).filter(created_at__lte=sixty).exists()


def test_recent_log_rows_are_kept(alias: str, seeded: dict[str, Any]) -> None:
    from django.contrib.admin.models import LogEntry
    from django.utils import timezone

    from tests.django_app.shop.models import AuditLog

    cutoff = timezone.now() - timedelta(days=30)
    recent_admin = set(LogEntry.objects.using(alias).filter(action_time__gte=cutoff)
                       .values_list("pk", flat=True))
    recent_audit = set(AuditLog.objects.using(alias).filter(created_at__gte=cutoff)
                       .values_list("pk", flat=True))
    call("--operation", "logs", database=alias)
    assert set(LogEntry.objects.using(alias).values_list("pk", flat=True)) == recent_admin
    assert set(AuditLog.objects.using(alias).values_list("pk", flat=True)) == recent_audit


# --- TestMaintenanceCommandLogging --------------------------------------------------------------


def test_every_run_is_in_the_history_and_the_orm(alias: str, seeded: dict[str, Any]) -> None:
    from wellkept.contrib.django.models import TaskExecutionLog

    report = call("--operation", "sessions", "--operation", "logs", database=alias)
    ids = {r["run_id"] for op in ("sessions", "logs") for r in records(report, op)}
    logged = list(TaskExecutionLog.objects.filter(run_id__in=ids))
    assert {row.run_id for row in logged} == ids
    for row in logged:
        assert row.status == "completed" and row.target == alias and row.trigger == "manual"
        assert row.finished_at is not None and row.finished_at >= row.started_at
        assert row.duration_seconds is not None and row.duration_seconds >= 0
    # the built-in sessions task is named after its kind, and its database unless default
    sessions = "sessions" if alias == "default" else f"sessions@{alias}"
    assert {row.task_name for row in logged} == {sessions, "admin_logentry", "audit_log"}


def test_the_log_keeps_the_results_details(alias: str, seeded: dict[str, Any]) -> None:
    from wellkept.contrib.django.models import TaskExecutionLog

    report = call("--operation", "cleanup", database=alias)
    run_id = records(report, "cleanup")[0]["run_id"]
    log = TaskExecutionLog.objects.get(run_id=run_id)
    assert log.result["status"] == "completed"
    assert log.result["metrics"]["rows_deleted"] == data.LONG_DELETED
    assert log.result["details"]["table"] == "shop_failedtask"
    assert log.result["details"]["batches"] == 3
    assert log.message == report["cleanup"]["message"]


# --- TestMaintenanceCommandIntegration ----------------------------------------------------------


def test_postgresql_refreshes_views_concurrently_and_vacuums(django_project: dict[str, str]
                                                             ) -> None:
    from django.db import connections

    from tests.django_app.shop.models import AuditLog

    data.seed("default")
    with connections["default"].cursor() as cur:
        cur.execute("REFRESH MATERIALIZED VIEW shop_daily_actions")
        AuditLog.objects.using("default").create(action="new")
        cur.execute("SELECT coalesce(sum(actions), 0) FROM shop_daily_actions")
        stale = cur.fetchone()[0]
    report = call("--operation", "views", "--operation", "vacuum", "--operation", "bloat",
                  "--operation", "reindex")
    view_run = records(report, "views")[0]
    assert view_run["metrics"]["concurrent_refreshes"] == 1
    with connections["default"].cursor() as cur:
        cur.execute("SELECT sum(actions) FROM shop_daily_actions")
        assert cur.fetchone()[0] == stale + 1
    for op in ("vacuum", "bloat", "reindex"):
        assert report[op]["status"] == "completed", report[op]


@pytest.mark.parametrize("operation", NINE)
def test_each_operation_through_manage_py(operation: str, django_project: dict[str, str]
                                          ) -> None:
    from tests.django_app.data import seed

    before = seed("default")
    code, report = manage_json("maintenance", "--operation", operation)
    assert code == 0, report
    assert report[operation]["status"] == "completed", report[operation]
    after = data.counts("default")
    changed = {"sessions": {"sessions_expired": 0},
               "logs": {"audit": data.RECENT_AUDIT, "admin_log": data.RECENT_ADMIN_LOG},
               "cleanup": {"tasks_all": data.LATELY_DELETED + data.LIVE_TASKS}}
    for key, value in changed.get(operation, {}).items():
        assert after[key] == value
    untouched = {k: v for k, v in before.items() if k not in changed.get(operation, {})}
    assert {k: after[k] for k in untouched} == untouched


def test_all_through_manage_py_on_sqlite(django_project: dict[str, str]) -> None:
    from tests.django_app.data import seed

    seed("lite")
    code, report = manage_json("maintenance", "--all", "--database", "lite", sessions_db="lite")
    assert code == 0, report
    assert [op for op in NINE if report[op]["status"] == "completed"] == \
        [op for op in NINE if op not in NOT_ON_SQLITE]
    after = data.counts("lite")
    assert after["sessions_expired"] == 0 and after["audit"] == data.RECENT_AUDIT


def test_operations_schedule_and_text_output_combine(alias: str, seeded: dict[str, Any]) -> None:
    report = call("--operation", "stats", "--schedule", "daily", "--dry-run", database=alias)
    assert list(report)[:-1] == ["stats", "sessions", "logs", "cleanup", "vacuum"]
    from io import StringIO

    out = StringIO()
    call_command("maintenance", "--schedule", "weekly", "--dry-run", "--database", alias,
                 stdout=out)
    text = out.getvalue()
    for op in PROFILES["weekly"]:
        assert text.count(f"\n{op} ") + text.startswith(f"{op} ") >= 1, text
    assert "dry run: nothing was changed" in text
    assert f"on database {alias}" in text
    _unchanged(alias, seeded)


def test_each_cadence_runs_its_operations(django_project: dict[str, str]) -> None:
    """--schedule daily|weekly|monthly, each alone: its cadence's operations in order
    (monthly: all nine), dry runs here."""
    for cadence, ops in PROFILES.items():
        report = call("--schedule", cadence, "--dry-run", database="lite")
        assert list(report)[:-1] == list(ops), cadence
    assert list(PROFILES["monthly"]) == NINE


def test_a_failing_operation_fails_the_command_and_the_others_still_run(
        alias: str, seeded: dict[str, Any]) -> None:
    from django.conf import settings
    from django.test import override_settings

    broken = {**settings.DATABASE_CLEANUP_RULES, "ghost": {
        "table": "no_such_table", "date_column": "created_at", "retention_days": 1,
        "database_alias": ["default", "lite"], "operation": "logs"}}
    with override_settings(DATABASE_CLEANUP_RULES=broken):
        report, error = call_failing("--operation", "logs", "--operation", "sessions",
                                     database=alias)
    assert error.returncode == 1 and "logs" in str(error)
    assert report["logs"]["status"] == "partial_failure"
    assert report["logs"]["details"]["ghost"]["status"] == "failed"
    assert any("ghost" in e and "no_such_table" in e for e in report["logs"]["errors"])
    assert report["sessions"]["status"] == "completed"
    assert data.counts(alias)["audit"] == data.RECENT_AUDIT  # the good rules did their work


def test_a_project_on_sqlite_alone_keeps_its_history_in_that_file(
        django_project: dict[str, str], project_dir: Path) -> None:
    """A new Django project's setup: one SQLite database, which then holds wellkept's history
    too (wk_runs beside the app's tables), and the admin's model reads it there."""
    import os
    import sqlite3

    env = {"DJANGO_SETTINGS_MODULE": "tests.django_app.settings_sqlite"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert manage("migrate", "-v", "0").returncode == 0
        code, report = manage_json("maintenance", "--all")
        shell = manage("shell", "-c", "from wellkept.contrib.django.models import "
                       "TaskExecutionLog as T; print(T.objects.filter(kind='backup').count())")
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert code == 0, report
    assert report["metadata"]["engine"] == "sqlite"
    assert report["metadata"]["database"] == "only.sqlite3"
    conn = sqlite3.connect(project_dir / "only.sqlite3")
    try:
        logged = {r[0] for r in conn.execute("SELECT run_id FROM wk_runs")}
    finally:
        conn.close()
    assert {r["run_id"] for op in NINE for r in records(report, op)} <= logged
    assert shell.returncode == 0 and int(shell.stdout.split()[-1]) >= 1, shell.stderr
