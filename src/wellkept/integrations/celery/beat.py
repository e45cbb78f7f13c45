"""``beat_schedule()``: the config's schedules as a Celery beat schedule, for teams that run
their own beat instead of the coordinator.

Each enabled schedule becomes an entry that sends ``wellkept.fire_schedule`` at its cron
times, in its time zone; the worker that receives it claims the slot in the store before
running anything, so two beats (the classic double-firing) still run each slot once. A
``wellkept:recover`` entry sends ``wellkept.recover`` every ``coordinator.reap_every``, so
interrupted runs are recovered without a coordinator.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from wellkept.errors import ConfigError

if TYPE_CHECKING:
    from wellkept.config import Settings


class ZoneNow:
    """``nowfun`` for a crontab evaluated in a zone of its own (picklable, for beat's shelve)."""

    def __init__(self, zone: str) -> None:
        self.zone = zone

    def __call__(self) -> datetime:
        return datetime.now(ZoneInfo(self.zone))


def beat_schedule(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """``app.conf.beat_schedule`` for ``settings`` (by default the config found as the
    ``wellkept`` command finds it)."""
    from celery.schedules import crontab

    from wellkept.integrations.celery.factory import TASK_FIRE_SCHEDULE, TASK_RECOVER

    if settings is None:
        from wellkept.config import load_config

        settings = load_config()
    queue = settings.executor.queue
    out: dict[str, dict[str, Any]] = {}
    for name, sched in settings.schedules.items():
        if not sched.enabled:
            continue
        spec = settings.schedule_spec(name)
        fields = spec.cron.expression.split()
        if len(fields) == 6:
            if fields[0] != "0":
                raise ConfigError(f"schedules.{name}.cron: {sched.cron!r} fires within a "
                                  "minute, which Celery beat's crontab cannot express")
            fields = fields[1:]
        if any(c in f for f in fields for c in "L#"):
            raise ConfigError(f"schedules.{name}.cron: {sched.cron!r} uses L or #, which "
                              "Celery beat's crontab cannot express")
        minute, hour, day_of_month, month, day_of_week = fields
        zone = {} if spec.timezone == settings.timezone else {"nowfun": ZoneNow(spec.timezone)}
        out[f"wellkept:{name}"] = {
            "task": TASK_FIRE_SCHEDULE, "args": (name,),
            "schedule": crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                                month_of_year=month, day_of_week=day_of_week, **zone),
            # a tick older than the grace would only be recorded as missed: let it expire
            "options": {"queue": queue, "expires": spec.grace.total_seconds()},
        }
    every = settings.coordinator.reap_every
    out["wellkept:recover"] = {"task": TASK_RECOVER, "schedule": every,
                               "options": {"queue": queue, "expires": every.total_seconds()}}
    return out
