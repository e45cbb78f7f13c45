"""Pure cron maths: parse, validate and step cron expressions in a timezone.

cronsim gives Debian-cron semantics (a schedule fires once across a DST change); it has no
``@daily``-style aliases, so they are mapped here. Fire times are computed in the schedule's IANA
timezone and returned as aware datetimes; callers store them in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression (five fields, or an ``@alias``)."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> CronSpec:
        """Validate ``text``; raise ValueError naming the problem."""
        from cronsim import CronSim, CronSimError

        expr = ALIASES.get(text.strip().lower(), text.strip())
        if len(expr.split()) != 5:
            raise ValueError(
                f"invalid cron expression {text!r}: expected 5 fields "
                "(minute hour day-of-month month day-of-week) or one of " + ", ".join(ALIASES)
            )
        try:
            CronSim(expr, datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression {text!r}: {exc}") from None
        return cls(expr)

    def next_after(self, moment: datetime, tz: str = "UTC") -> datetime:
        """The first fire time strictly after ``moment`` (aware), evaluated in ``tz``."""
        from cronsim import CronSim

        local = moment.astimezone(ZoneInfo(tz))
        return next(iter(CronSim(self.expression, local)))

    def explain(self) -> str:
        from cronsim import CronSim

        return str(CronSim(self.expression, datetime.now(ZoneInfo("UTC"))).explain())
