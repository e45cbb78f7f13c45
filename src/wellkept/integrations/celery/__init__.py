"""wellkept on Celery workers (docs/celery.md).

``celery -A wellkept.integrations.celery worker -Q maintenance`` starts a worker for the config
found as the ``wellkept`` command finds it (``$WELLKEPT_CONFIG``, else ``./wellkept.yml``):
``app`` is built on first use, so importing this module reads no file. ``wellkept worker`` is
the same worker, with the config's checks made first. ``beat_schedule()`` gives a beat schedule
built from the config, for teams that run their own beat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wellkept.integrations.celery.beat import beat_schedule
from wellkept.integrations.celery.factory import (
    TASK_FIRE_SCHEDULE,
    TASK_RECOVER,
    TASK_RUN,
    check_broker,
    create_app,
)

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["TASK_FIRE_SCHEDULE", "TASK_RECOVER", "TASK_RUN", "app", "beat_schedule",
           "check_broker", "create_app"]

_app: Celery | None = None


def __getattr__(name: str) -> Any:
    """``app``: the Celery app of the config, made (once) when first asked for."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        from wellkept.config import load_config

        _app = create_app(load_config())
    return _app
