"""Pure cron maths: parse, validate and step cron expressions in a timezone; maintenance windows.

cronsim gives Debian-cron semantics (a schedule fires once across a DST change); it has no
``@daily``-style aliases, so they are mapped here. Fire times are computed in the schedule's IANA
timezone and returned as aware UTC datetimes, which is how the store keeps them.

Nothing here reads a clock: every function takes the moment it works from, so the scheduler can
be driven by an injected clock in tests (DST nights, downtime) without sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
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

#: results cronsim may hand back behind the cursor before we give up on it (a DST fold gives
#: one or two; cronsim itself refuses impossible dates such as Feb 30)
_BEHIND_LIMIT = 1_000
#: counting slots stops here (a per-second schedule down for four months)
COUNT_LIMIT = 10_000_000


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression: five fields, six (a leading seconds field), or an alias."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> CronSpec:
        """Validate ``text``; raise ValueError naming the problem."""
        from cronsim import CronSim, CronSimError

        expr = ALIASES.get(text.strip().lower(), " ".join(text.split()))
        if len(expr.split()) not in (5, 6):
            raise ValueError(
                f"invalid cron expression {text!r}: expected 5 fields "
                "(minute hour day-of-month month day-of-week), 6 with a leading seconds field, "
                "or one of " + ", ".join(ALIASES)
            )
        try:
            CronSim(expr, datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression {text!r}: {exc}") from None
        return cls(expr)

    def fires_after(self, moment: datetime, tz: str = "UTC") -> Iterator[datetime]:
        """Fire times strictly after ``moment`` (aware), in UTC, strictly increasing.

        cronsim started inside a DST fall-back hour can hand back the earlier occurrence of
        that hour (a time before ``moment``); such results are skipped here, so a slot that
        already fired is never produced twice."""
        from cronsim import CronSim

        floor = moment.astimezone(UTC)
        behind = 0
        for fire in CronSim(self.expression, floor.astimezone(ZoneInfo(tz))):
            fire_utc = fire.astimezone(UTC)
            if fire_utc > floor:
                floor, behind = fire_utc, 0
                yield fire_utc
            else:
                behind += 1
                if behind > _BEHIND_LIMIT:
                    return

    def next_after(self, moment: datetime, tz: str = "UTC") -> datetime | None:
        """The first fire time strictly after ``moment``, in UTC (None if it never fires)."""
        return next(self.fires_after(moment, tz), None)

    def between(self, after: datetime, until: datetime, tz: str = "UTC",
                limit: int = 1000) -> list[datetime]:
        """Fire times in ``(after, until]``, oldest first, at most ``limit`` (the newest kept).

        A coordinator down for months must not build a list of every minute it missed: only
        the newest ``limit`` slots are returned, and ``skipped_count`` tells how many more."""
        out: list[datetime] = []
        for fire in self.fires_after(after, tz):
            if fire > until:
                break
            out.append(fire)
            if len(out) > limit:
                del out[0]
        return out

    def count_between(self, after: datetime, until: datetime, tz: str = "UTC") -> int:
        """How many fire times fall in ``(after, until]`` (at most COUNT_LIMIT)."""
        n = 0
        for fire in self.fires_after(after, tz):
            if fire > until or n >= COUNT_LIMIT:
                break
            n += 1
        return n

    def explain(self) -> str:
        from cronsim import CronSim

        try:
            return str(CronSim(self.expression, datetime.now(ZoneInfo("UTC"))).explain())
        except Exception:  # cronsim explains most but not all expressions (e.g. L, #)
            return self.expression


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(?:(?P<days>[a-z, -]+?)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*"
                     r"(?P<end>\d{1,2}:\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    """A daily maintenance window in the schedule's timezone, e.g. ``01:00-05:00``.

    It may cross midnight (``22:00-04:00``) and may name the days it opens on
    (``sat,sun 00:00-06:00``, ``mon-fri 22:00-04:00``; a window crossing midnight belongs to
    the day it opens). No run of the schedule starts outside it; runs already going are not
    stopped at its end."""

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Window:
        m = _WINDOW.match(text.lower())
        if not m:
            raise ValueError(f"invalid window {text!r}: write HH:MM-HH:MM, optionally after days, "
                             "e.g. 01:00-05:00, 22:00-04:00 or sat,sun 00:00-06:00")
        start, end = (_clock_time(m.group(k), text) for k in ("start", "end"))
        if start == end:
            raise ValueError(f"invalid window {text!r}: it opens and closes at the same time")
        days = _parse_days(m.group("days"), text) if m.group("days") else frozenset(range(7))
        return cls(start=start, end=end, days=days, text=" ".join(text.split()))

    def contains(self, moment: datetime, tz: str = "UTC") -> bool:
        local = moment.astimezone(ZoneInfo(tz))
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end and local.weekday() in self.days
        # crosses midnight: the part after midnight belongs to the previous day's window
        if now >= self.start:
            return local.weekday() in self.days
        if now < self.end:
            return (local - timedelta(days=1)).weekday() in self.days
        return False


def _clock_time(value: str, text: str) -> time:
    hours, minutes = (int(x) for x in value.split(":"))
    if hours == 24 and minutes == 0:
        return time(0, 0)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"invalid window {text!r}: {value} is not a time of day")
    return time(hours, minutes)


def _parse_days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        ends = [e.strip()[:3] for e in part.split("-")]
        if any(e not in _DAYS for e in ends) or len(ends) > 2:
            raise ValueError(f"invalid window {text!r}: unknown day {part!r}; use "
                             + ", ".join(_DAYS))
        first, last = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
        i = first
        while True:
            days.add(i)
            if i == last:
                break
            i = (i + 1) % 7
    return frozenset(days)
