"""Rows for the maintenance tests, in one database: sessions (expired and live), admin log
entries (old and recent), audit log rows and failed tasks (soft-deleted long ago, lately, and
live). ``counts`` reads the tables back, as the effects are checked in the database itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

EXPIRED_SESSIONS, LIVE_SESSIONS = 5, 3
OLD_ADMIN_LOG, RECENT_ADMIN_LOG = 4, 2        # 200 and 10 days old (the rule keeps 90 days)
OLD_AUDIT, RECENT_AUDIT = 6, 3                # 60 and 5 days old (the rule keeps 30 days)
LONG_DELETED, LATELY_DELETED, LIVE_TASKS = 5, 2, 3  # soft-deleted 60 and 2 days ago


def seed(alias: str) -> dict[str, Any]:
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.models import Session
    from django.db import connections

    from tests.django_app.shop.models import AuditLog, FailedTask

    now = timezone.now()
    with connections[alias].cursor() as cur:
        for table in ("django_admin_log_archive", "shop_failedtask_archive"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    for model in (LogEntry, Session, AuditLog):
        model.objects.using(alias).all().delete()
    FailedTask.all_objects.using(alias).all().delete()
    Session.objects.using(alias).bulk_create(
        [Session(session_key=f"expired{i}", session_data="x",
                 expire_date=now - timedelta(days=1 + i)) for i in range(EXPIRED_SESSIONS)]
        + [Session(session_key=f"live{i}", session_data="x", expire_date=now + timedelta(days=7))
           for i in range(LIVE_SESSIONS)])
    user, _ = User.objects.using(alias).get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True})
    kind = ContentType.objects.db_manager(alias).get_for_model(User)
    LogEntry.objects.using(alias).bulk_create(
        [LogEntry(user=user, content_type=kind, object_id=str(user.pk), object_repr="admin",
                  action_flag=ADDITION, action_time=now - timedelta(days=200 + i))
         for i in range(OLD_ADMIN_LOG)]
        + [LogEntry(user=user, content_type=kind, object_id=str(user.pk), object_repr="admin",
                    action_flag=ADDITION, action_time=now - timedelta(days=10))
           for _ in range(RECENT_ADMIN_LOG)])
    AuditLog.objects.using(alias).bulk_create(
        [AuditLog(action="old", created_at=now - timedelta(days=60)) for _ in range(OLD_AUDIT)]
        + [AuditLog(action="recent", created_at=now - timedelta(days=5))
           for _ in range(RECENT_AUDIT)])
    FailedTask.all_objects.using(alias).bulk_create(
        [FailedTask(name="long", deleted_at=now - timedelta(days=60))
         for _ in range(LONG_DELETED)]
        + [FailedTask(name="lately", deleted_at=now - timedelta(days=2))
           for _ in range(LATELY_DELETED)]
        + [FailedTask(name="live") for _ in range(LIVE_TASKS)])
    return counts(alias)


def counts(alias: str) -> dict[str, Any]:
    from django.contrib.admin.models import LogEntry
    from django.contrib.sessions.models import Session
    from django.db import connections

    from tests.django_app.shop.models import AuditLog, FailedTask

    now = timezone.now()
    out: dict[str, Any] = {
        "sessions_expired": Session.objects.using(alias).filter(expire_date__lt=now).count(),
        "sessions_live": Session.objects.using(alias).filter(expire_date__gte=now).count(),
        "admin_log": LogEntry.objects.using(alias).count(),
        "audit": AuditLog.objects.using(alias).count(),
        "tasks_all": FailedTask.all_objects.using(alias).count(),
        "tasks_live": FailedTask.objects.using(alias).count(),
    }
    tables = connections[alias].introspection.table_names()
    for table in ("django_admin_log_archive", "shop_failedtask_archive"):
        if table in tables:
            with connections[alias].cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {table}")
                out[table] = cur.fetchone()[0]
    return out
