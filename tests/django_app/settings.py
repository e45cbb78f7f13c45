"""The test project's settings: PostgreSQL as ``default``, SQLite as ``lite``, MariaDB as
``shop``. The conftest makes the databases and a folder and passes them through the
environment, so that ``manage.py`` subprocesses see the same project as the test process."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(os.environ.get("WELLKEPT_DJANGO_DIR", "/nonexistent/wellkept-django"))


def _server(url: str, engine: str) -> dict[str, object]:
    u = urlsplit(url)
    return {"ENGINE": engine, "NAME": unquote(u.path.lstrip("/")), "USER": u.username or "",
            "PASSWORD": unquote(u.password or ""), "HOST": u.hostname or "",
            "PORT": u.port or ""}


DATABASES = {
    "default": _server(os.environ.get("WELLKEPT_DJANGO_PG", "postgresql://postgres@127.0.0.1/x"),
                       "django.db.backends.postgresql"),
    "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "lite.sqlite3"},
    "shop": _server(os.environ.get("WELLKEPT_DJANGO_MYSQL", "mysql://root@127.0.0.1/x"),
                    "django.db.backends.mysql"),
}
DATABASE_ROUTERS = ["tests.django_app.router.SessionsRouter"]
#: where the router sends sessions (tests on SQLite point it at "lite")
TEST_SESSIONS_DATABASE = os.environ.get("WELLKEPT_DJANGO_SESSIONS_DB", "default")

SECRET_KEY = "wellkept-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "wellkept.contrib.django",
    "tests.django_app.shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.django_app.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "wellkept@example.com"

# --- seed 001's settings ------------------------------------------------------------------------
MAINTENANCE_NOTIFICATION_EMAILS = ["dba@example.com", "devops@example.com"]
DATABASE_CLEANUP_RULES = {
    "admin_logentry": {  # seed 001's rule as it is: the admin log, archived after 90 days
        "table": "django_admin_log", "date_column": "action_time", "retention_days": 90,
        "cleanup_type": "archive", "database_alias": ["default", "lite"],
    },
    "audit_log": {
        "table": "shop_auditlog", "date_column": "created_at", "retention_days": 30,
        "cleanup_type": "delete", "operation": "logs", "database_alias": ["default", "lite"],
    },
    "failed_tasks": {  # soft-deleted rows, archived 30 days after their deletion
        "table": "shop_failedtask", "soft_delete_column": "deleted_at", "retention_days": 30,
        "cleanup_type": "archive", "batch_size": 2, "target_batch_seconds": 0,
        "database_alias": ["default", "lite"],
    },
}
CUSTOM_MAINTENANCE_SCHEDULES = {
    "hourly_health_check": {"database_alias": "default", "task_type": "health_check",
                            "schedule_cron": "0 * * * *", "enabled": True},
}
WELLKEPT = {
    "tasks": {
        "app-backup": {"kind": "backup", "targets": ["default", "lite"],
                       "destination": "backups/", "verify": "restore", "keep_last": 3},
    },
    "coordinator": {"heartbeat": "1s"},
}

# --- Celery: wellkept's task on its own queue ----------------------------------------------------
CELERY_BROKER_URL = os.environ.get("WELLKEPT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_TASK_ROUTES = {"wellkept.contrib.django.tasks.*": {
    "queue": os.environ.get("WELLKEPT_DJANGO_QUEUE", "maintenance")}}
