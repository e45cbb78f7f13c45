"""A Celery task for Django projects that schedule maintenance with Celery beat.

``wellkept.contrib.django.tasks.maintenance`` runs the same operations as ``manage.py
maintenance`` (and records them the same way), in a Celery worker. Celery's
``app.autodiscover_tasks()`` finds it through ``INSTALLED_APPS``; route it to the maintenance
queue, so that long maintenance never waits behind (or blocks) the application's own tasks::

    CELERY_TASK_ROUTES = {"wellkept.contrib.django.tasks.*": {"queue": "maintenance"}}
    CELERY_BEAT_SCHEDULE = {"nightly-maintenance": {
        "task": "wellkept.contrib.django.tasks.maintenance",
        "schedule": crontab(hour=2, minute=0), "kwargs": {"schedule": "daily"}}}

The task's result is the JSON report of ``manage.py maintenance --output json``. When an
operation fails, the task fails (``MaintenanceFailed``) after every operation has had its turn,
so Celery's own monitoring sees it; the runs are in wellkept's history either way, and alert
like any other run.
"""

from __future__ import annotations

import json
from typing import Any

from celery import shared_task

from wellkept.errors import WellkeptError

NAME = "wellkept.contrib.django.tasks.maintenance"


class MaintenanceFailed(WellkeptError):
    """At least one operation failed (the message says which; the history says how)."""


@shared_task(name=NAME)  # type: ignore[untyped-decorator]
def maintenance(operations: list[str] | None = None, *, schedule: str | None = None,
                all_operations: bool = False, database: str = "default",
                dry_run: bool = False, trigger: str = "manual") -> dict[str, Any]:
    """``manage.py maintenance`` as a task: ``operations`` (their names), or the
    ``schedule`` cadence's, or ``all_operations``, on ``database``."""
    from wellkept.contrib.django.conf import load
    from wellkept.contrib.django.operations import expand
    from wellkept.contrib.django.report import to_json
    from wellkept.contrib.django.runner import run_maintenance
    from wellkept.types import Trigger

    wanted = expand(list(operations or []), everything=all_operations, profile=schedule)
    run = run_maintenance(load(), wanted, database=database, dry_run=dry_run,
                          trigger=Trigger(trigger))
    report: dict[str, Any] = json.loads(json.dumps(to_json(run), default=str))
    if run.failed:
        raise MaintenanceFailed(f"{len(run.failed)} of {len(run.outcomes)} operation(s) failed "
                                f"on {database}: " + ", ".join(o.operation for o in run.failed))
    return report
