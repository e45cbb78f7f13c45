"""Whether a log is due for rotation, exactly as logrotate decides it.

- ``size`` alone: rotate when the file is at least that big; any interval is ignored.
- an interval (hourly … yearly) against the last rotation in the state; a log seen for the
  first time is not rotated, only recorded (logrotate does the same).
- ``minsize``: the interval is due *and* the file is at least that big.
- ``maxsize``: the interval is due *or* the file is bigger than that.
- ``notifempty``: an empty file is never rotated.
Times are compared in the configured time zone's calendar, as logrotate uses local time.
"""

from __future__ import annotations

from datetime import datetime

#: logrotate rotates anyway when the state is this far in the future (the clock went back)
FUTURE_SLACK_SECONDS = 25 * 3600


def interval_due(interval: str, last: datetime, now: datetime, weekday: int = 0) -> bool:
    """logrotate's calendar tests for hourly, daily, weekly, monthly and yearly. Weekly:
    the date has advanced by 7 days or more (the time of day is ignored), or today is
    ``weekday`` (0 Sunday … 6 Saturday; 7: every 7 days only) and the last rotation was
    on an earlier day."""
    if (last - now).total_seconds() > FUTURE_SLACK_SECONDS:
        return True
    if interval == "hourly":
        return (now.hour, now.timetuple().tm_yday, now.year) != (
            last.hour, last.timetuple().tm_yday, last.year)
    if interval == "daily":
        return (now.timetuple().tm_yday, now.year) != (last.timetuple().tm_yday, last.year)
    if interval == "weekly":
        days = (now.date() - last.date()).days
        return days >= 7 or (weekday != 7 and now.isoweekday() % 7 == weekday and days > 0)
    if interval == "monthly":
        return (now.month, now.year) != (last.month, last.year)
    if interval == "yearly":
        return now.year != last.year
    raise ValueError(f"unknown interval {interval!r}")


def decide(*, size: int, size_rule: int | None, interval: str | None,
           minsize: int | None, maxsize: int | None, notifempty: bool,
           last: datetime | None, now: datetime, weekday: int = 0) -> tuple[bool, str]:
    """(rotate?, why) for a log of ``size`` bytes last rotated at ``last`` (None: never)."""
    if size_rule is not None:
        due = size >= size_rule
        why = f"size {size} >= {size_rule}" if due else f"size {size} < {size_rule}"
    elif interval is None:
        due, why = True, "no interval: every run"
    else:
        if last is None:
            due, why = False, "first seen: recorded, rotated from the next period on"
        else:
            due = interval_due(interval, last, now, weekday)
            why = f"{interval} interval " + ("due" if due else "not due yet")
        if due and minsize is not None and size < minsize:
            due, why = False, f"{why}, but size {size} < minsize {minsize}"
        if not due and maxsize is not None and size > maxsize:
            due, why = True, f"size {size} > maxsize {maxsize}"
    if due and notifempty and size == 0:
        return False, "empty (notifempty)"
    return due, why
