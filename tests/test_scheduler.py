"""Slot decisions after downtime, pauses, windows and overlaps (pure; an injected moment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wellkept.schedule import CronSpec, Window
from wellkept.scheduler import MAX_SLOT_ROWS, ScheduleSpec, SlotCause, SlotOutcome, plan

HOURLY = ScheduleSpec(name="h", cron=CronSpec.parse("0 * * * *"), timezone="UTC",
                      grace=timedelta(minutes=30))
T0 = datetime(2026, 11, 2, 9, 0, 30, tzinfo=UTC)


def outcomes(p):  # type: ignore[no-untyped-def]
    return [(d.slot_at.hour, str(d.outcome), d.cause and str(d.cause)) for d in p.decisions]


def test_first_sight_starts_from_now_and_invents_no_past() -> None:
    p = plan(HOURLY, cursor=None, now=T0)
    assert p.decisions == [] and p.evaluated_through == T0
    assert p.next_fire == datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_a_slot_on_time_runs() -> None:
    p = plan(HOURLY, cursor=T0, now=T0 + timedelta(hours=1))
    assert outcomes(p) == [(10, "queued", None)]
    assert p.decisions[0].late_seconds(T0 + timedelta(hours=1)) == 30


def test_downtime_of_three_slots_coalesces_into_one_run_and_two_missed() -> None:
    p = plan(HOURLY, cursor=T0, now=T0 + timedelta(hours=3, minutes=10),
             last_tick=T0)
    assert outcomes(p) == [(10, "missed", "coalesced"), (11, "missed", "coalesced"),
                           (12, "queued", None)]
    assert "last ticked at 2026-11-02T09:00:30.000Z" in p.decisions[0].detail
    assert "coalesced into the run of 2026-11-02T12:00:00.000Z" in p.decisions[0].detail


def test_catch_up_runs_the_newest_slot_even_past_its_grace() -> None:
    p = plan(HOURLY, cursor=T0, now=T0 + timedelta(hours=5, minutes=40))
    assert outcomes(p)[-1] == (14, "queued", None)
    assert "late (catch-up)" in p.decisions[-1].detail
    strict = ScheduleSpec(**{**HOURLY.__dict__, "catch_up": False})
    p = plan(strict, cursor=T0, now=T0 + timedelta(hours=5, minutes=40))
    assert outcomes(p) == [(10, "missed", "down"), (11, "missed", "down"), (12, "missed", "down"),
                           (13, "missed", "down"), (14, "missed", "past_grace")]


def test_paused_slots_are_skipped() -> None:
    p = plan(HOURLY, cursor=T0, now=T0 + timedelta(hours=2), paused=True)
    assert outcomes(p) == [(10, "skipped", "paused"), (11, "skipped", "paused")]


def test_a_slot_outside_the_window_is_skipped() -> None:
    windowed = ScheduleSpec(**{**HOURLY.__dict__, "window": Window.parse("01:00-05:00")})
    p = plan(windowed, cursor=T0, now=T0 + timedelta(hours=1))
    assert outcomes(p) == [(10, "skipped", "outside_window")]
    assert "outside the window 01:00-05:00" in p.decisions[0].detail
    night = datetime(2026, 11, 2, 1, 0, 1, tzinfo=UTC)
    assert outcomes(plan(windowed, cursor=night - timedelta(minutes=5), now=night)) == [
        (1, "queued", None)]


def test_an_overlapping_slot_is_skipped() -> None:
    p = plan(HOURLY, cursor=T0, now=T0 + timedelta(hours=1), busy=True)
    assert outcomes(p) == [(10, "skipped", "overlap")]


def test_a_long_downtime_never_floods_the_store() -> None:
    every_second = ScheduleSpec(name="s", cron=CronSpec.parse("* * * * * *"), timezone="UTC",
                                grace=timedelta(seconds=5))
    p = plan(every_second, cursor=T0, now=T0 + timedelta(days=1))
    assert len(p.decisions) == MAX_SLOT_ROWS
    assert sum(d.covers for d in p.decisions) == 86400
    assert p.decisions[-1].runs and p.decisions[0].covers == 86400 - MAX_SLOT_ROWS + 1
    assert p.decisions[0].cause is SlotCause.COALESCED and p.decisions[0].outcome \
        is SlotOutcome.MISSED


def test_the_fall_back_night_gives_one_slot_whatever_the_tick_pattern() -> None:
    spec = ScheduleSpec(name="d", cron=CronSpec.parse("30 2 * * *"), timezone="Europe/Berlin",
                        grace=timedelta(hours=1))
    cursor = datetime(2026, 10, 24, 22, tzinfo=UTC)
    slots = []
    moment = cursor
    while moment < datetime(2026, 10, 25, 6, tzinfo=UTC):  # tick every 7 minutes
        moment += timedelta(minutes=7)
        p = plan(spec, cursor=cursor, now=moment)
        slots += [d.slot_at for d in p.decisions]
        cursor = p.evaluated_through
    assert slots == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
