"""Cron maths and maintenance windows (pure: plain datetimes, no clock, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wellkept.schedule import CronSpec, Window

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_aliases_and_the_seconds_field() -> None:
    assert CronSpec.parse("@daily").expression == "0 0 * * *"
    assert CronSpec.parse(" @Weekly ").expression == "0 0 * * 0"
    every_5s = CronSpec.parse("*/5 * * * * *")
    assert every_5s.between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 20)) == [
        utc(2026, 1, 1, 0, 0, s) for s in (5, 10, 15, 20)]


@pytest.mark.parametrize("text, message", [
    ("0 25 * * *", "Bad hour"),
    ("@fortnightly", "expected 5 fields"),
    ("* * *", "expected 5 fields"),
    ("0 0 30 2 *", "Bad day-of-month"),
])
def test_invalid_expressions_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronSpec.parse(text)


def test_a_daily_job_fires_once_across_the_fall_back_night() -> None:
    """02:30 happens twice in Berlin on 2026-10-25; the job fires once, at the first."""
    spec = CronSpec.parse("30 2 * * *")
    night = spec.between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12), BERLIN)
    assert night == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # resuming from a cursor inside the repeated hour never hands back the first 02:30
    inside = utc(2026, 10, 25, 1, 15)  # 02:15 CET, the second pass through 02:xx
    assert spec.next_after(inside, BERLIN) == utc(2026, 10, 26, 1, 30)


def test_a_daily_job_fires_once_across_the_spring_forward_night() -> None:
    """02:30 does not exist in Berlin on 2026-03-29: Debian cron runs it at 03:00."""
    spec = CronSpec.parse("30 2 * * *")
    night = spec.between(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12), BERLIN)
    assert night == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert night[0].astimezone(ZoneInfo(BERLIN)).hour == 3


def test_an_hourly_job_keeps_every_real_hour_across_dst() -> None:
    spec = CronSpec.parse("0 * * * *")
    fires = spec.between(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3, 30), BERLIN)
    assert fires == [utc(2026, 10, 25, h) for h in range(4)]


def test_between_keeps_only_the_newest_slots_and_counts_them_all() -> None:
    spec = CronSpec.parse("* * * * *")
    start = utc(2026, 1, 1)
    kept = spec.between(start, start + timedelta(days=1), limit=10)
    assert len(kept) == 10 and kept[-1] == start + timedelta(days=1)
    assert spec.count_between(start, start + timedelta(days=1)) == 1440


@pytest.mark.parametrize("text, moment, inside", [
    ("01:00-05:00", utc(2026, 6, 1, 1, 0), True),
    ("01:00-05:00", utc(2026, 6, 1, 5, 0), False),     # the end is exclusive
    ("22:00-04:00", utc(2026, 6, 1, 23, 0), True),
    ("22:00-04:00", utc(2026, 6, 2, 3, 59), True),
    ("22:00-04:00", utc(2026, 6, 2, 12, 0), False),
    ("sat,sun 00:00-06:00", utc(2026, 6, 6, 2, 0), True),    # a Saturday
    ("sat,sun 00:00-06:00", utc(2026, 6, 8, 2, 0), False),   # a Monday
    ("fri 22:00-04:00", utc(2026, 6, 6, 3, 0), True),        # Saturday early: Friday's window
    ("mon-fri 22:00-04:00", utc(2026, 6, 7, 23, 0), False),  # Sunday evening
])
def test_windows(text: str, moment: datetime, inside: bool) -> None:
    assert Window.parse(text).contains(moment) is inside


def test_a_window_is_read_in_the_schedules_timezone() -> None:
    window = Window.parse("01:00-05:00")
    assert window.contains(utc(2026, 6, 1, 0, 30), BERLIN)  # 02:30 in Berlin (CEST)
    assert not window.contains(utc(2026, 6, 1, 0, 30))


@pytest.mark.parametrize("text, message", [
    ("1-5", "write HH:MM-HH:MM"), ("25:00-01:00", "not a time of day"),
    ("03:00-03:00", "same time"), ("someday 01:00-02:00", "unknown day"),
])
def test_invalid_windows(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window.parse(text)
