"""The Celery task: routed to the maintenance queue by CELERY_TASK_ROUTES, and run by a real
worker (RabbitMQ broker) with the same effects and history as ``manage.py maintenance``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.django_app import data

ROOT = Path(__file__).resolve().parents[2]


def test_the_task_is_routed_to_the_maintenance_queue(django_project: dict[str, str]) -> None:
    from tests.django_app.celery_app import app
    from wellkept.contrib.django.tasks import NAME

    app.loader.import_default_modules()
    assert NAME in app.tasks
    route = app.amqp.router.route({}, NAME, args=(), kwargs={})
    assert route["queue"].name == "maintenance"


def test_a_failing_operation_fails_the_task(django_project: dict[str, str]) -> None:
    from django.test import override_settings

    from wellkept.contrib.django.tasks import MaintenanceFailed, maintenance

    rules = {"ghost": {"table": "no_such_table", "date_column": "created_at",
                       "retention_days": 1, "operation": "logs"}}
    with override_settings(DATABASE_CLEANUP_RULES=rules), \
            pytest.raises(MaintenanceFailed, match="1 of 1 operation"):
        maintenance.apply(kwargs={"operations": ["logs"]}, throw=True).get()


def test_a_real_worker_runs_the_daily_cadence(django_project: dict[str, str],
                                              rabbitmq: str) -> None:
    from wellkept.contrib.django.models import TaskExecutionLog
    from wellkept.contrib.django.tasks import maintenance

    data.seed("default")
    queue = f"wk-test-{uuid.uuid4().hex[:8]}"  # the shared broker: a queue of our own
    env = {**os.environ, "WELLKEPT_DJANGO_QUEUE": queue, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.django_app.celery_app", "worker",
         "-Q", queue, "-P", "solo", "-c", "1", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.time()
    try:
        maintenance.apply_async(kwargs={"schedule": "daily", "trigger": "schedule"}, queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and data.counts("default")["sessions_expired"]:
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.3)
        assert data.counts("default")["sessions_expired"] == 0
        from datetime import UTC, datetime

        since = datetime.fromtimestamp(started, UTC)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = list(TaskExecutionLog.objects.filter(started_at__gte=since,
                                                        trigger="schedule"))
            if {r.task_name for r in runs} >= {"sessions", "audit_log", "stats", "vacuum"}:
                break
            time.sleep(0.3)
        assert {r.task_name for r in runs} >= {"sessions", "audit_log", "stats", "vacuum"}
    finally:
        worker.terminate()
        worker.wait(30)
        from tests.django_app.celery_app import app

        with app.connection_for_write() as conn:  # leave the shared broker as it was
            conn.default_channel.queue_delete(queue)
