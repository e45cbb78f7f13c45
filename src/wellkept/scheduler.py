"""What a schedule should do about the slots that came due: a pure function of the moment.

The coordinator keeps, per schedule, the moment up to which slots have been evaluated (the
cursor). On each tick it asks :func:`plan` about the slots in ``(cursor, now]`` and records one
outcome per slot: the newest one runs (late, if the coordinator was down) unless the schedule
is paused, the run would start outside the maintenance window, the previous run of the schedule
is still going, or it is past its grace and catch-up is off. The older ones were coalesced into
that run, or missed because no coordinator was running at their time. Nothing here touches the
store or a clock, so DST nights and downtime are tested with plain datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from wellkept.records import iso_z
from wellkept.schedule import CronSpec, Window

#: slots recorded one row each; beyond this (a per-second schedule down for a day) the oldest row
#: stands for all the earlier ones (``covers``), so downtime never floods the store
MAX_SLOT_ROWS = 100


class SlotOutcome(StrEnum):
    """What became of one (schedule, slot): stored in ``wk_schedule_slots.outcome``."""

    QUEUED = "queued"      # claimed; its run waits for a free worker
    RAN = "ran"            # its run started (``status`` says how it ended)
    MISSED = "missed"      # it could not run (no coordinator at its time, past its grace)
    SKIPPED = "skipped"    # it was not run on purpose (paused, outside the window, overlap)


class SlotCause(StrEnum):
    """Why a slot did not run."""

    COALESCED = "coalesced"            # a later slot ran in its place after downtime
    DOWN = "down"                      # no coordinator was running at its time
    PAST_GRACE = "past_grace"          # too late to start, and catch_up is off
    PAUSED = "paused"
    OUTSIDE_WINDOW = "outside_window"
    OVERLAP = "overlap"                # the schedule's previous run was still going
    SHUTDOWN = "shutdown"              # claimed, but the coordinator stopped before it started


@dataclass(frozen=True)
class ScheduleSpec:
    """The parts of a schedule's settings that decide its slots."""

    name: str
    cron: CronSpec
    timezone: str
    grace: timedelta
    catch_up: bool = True
    window: Window | None = None


@dataclass(frozen=True)
class SlotDecision:
    slot_at: datetime
    outcome: SlotOutcome            # QUEUED (run it), MISSED or SKIPPED
    cause: SlotCause | None = None
    detail: str = ""
    covers: int = 1                 # how many slots this row stands for (see MAX_SLOT_ROWS)

    @property
    def runs(self) -> bool:
        return self.outcome is SlotOutcome.QUEUED

    def late_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.slot_at).total_seconds())


@dataclass(frozen=True)
class Plan:
    decisions: list[SlotDecision] = field(default_factory=list)
    evaluated_through: datetime | None = None
    next_fire: datetime | None = None


def plan(spec: ScheduleSpec, *, cursor: datetime | None, now: datetime, paused: bool = False,
         busy: bool = False, last_tick: datetime | None = None) -> Plan:
    """Decide the slots in ``(cursor, now]``. A schedule seen for the first time (no cursor)
    starts from ``now``: wellkept does not invent a past it never knew."""
    next_fire = spec.cron.next_after(now, spec.timezone)
    if cursor is None or cursor >= now:
        return Plan(evaluated_through=max(now, cursor or now), next_fire=next_fire)
    due = spec.cron.between(cursor, now, spec.timezone, limit=MAX_SLOT_ROWS)
    if not due:
        return Plan(evaluated_through=now, next_fire=next_fire)
    extra = spec.cron.count_between(cursor, now, spec.timezone) - len(due) \
        if len(due) == MAX_SLOT_ROWS else 0
    newest, older = due[-1], due[:-1]
    head = _decide_newest(spec, newest, now, paused=paused, busy=busy)
    decisions = []
    for slot in older:
        if head.outcome is SlotOutcome.SKIPPED and head.cause is SlotCause.PAUSED:
            decisions.append(SlotDecision(slot, SlotOutcome.SKIPPED, SlotCause.PAUSED,
                                          "the schedule is paused"))
        elif head.runs:
            decisions.append(SlotDecision(
                slot, SlotOutcome.MISSED, SlotCause.COALESCED,
                f"{_not_running(last_tick)}; coalesced into the run of {iso_z(newest)}"))
        else:
            decisions.append(SlotDecision(slot, SlotOutcome.MISSED, SlotCause.DOWN,
                                          _not_running(last_tick)))
    if extra and decisions:
        first = decisions[0]
        decisions[0] = SlotDecision(first.slot_at, first.outcome, first.cause,
                                    f"{first.detail} (this row also stands for {extra} "
                                    "earlier slots)", covers=1 + extra)
    decisions.append(head)
    return Plan(decisions=decisions, evaluated_through=now, next_fire=next_fire)


def _decide_newest(spec: ScheduleSpec, slot: datetime, now: datetime, *, paused: bool,
                   busy: bool) -> SlotDecision:
    if paused:
        return SlotDecision(slot, SlotOutcome.SKIPPED, SlotCause.PAUSED, "the schedule is paused")
    late = now - slot
    if late > spec.grace and not spec.catch_up:
        return SlotDecision(slot, SlotOutcome.MISSED, SlotCause.PAST_GRACE,
                            f"{_ago(late)} late, past its grace of {_ago(spec.grace)} "
                            "(catch_up is off)")
    if spec.window is not None and not spec.window.contains(now, spec.timezone):
        return SlotDecision(slot, SlotOutcome.SKIPPED, SlotCause.OUTSIDE_WINDOW,
                            f"{iso_z(now)} is outside the window {spec.window.text} "
                            f"({spec.timezone})")
    if busy:
        return SlotDecision(slot, SlotOutcome.SKIPPED, SlotCause.OVERLAP,
                            "the previous run of this schedule is still going")
    detail = f"started {_ago(late)} late (catch-up)" if late > spec.grace else ""
    return SlotDecision(slot, SlotOutcome.QUEUED, None, detail)


def _not_running(last_tick: datetime | None) -> str:
    if last_tick is None:
        return "no coordinator was running at its time"
    return f"no coordinator was running at its time (the scheduler last ticked at " \
           f"{iso_z(last_tick)})"


def _ago(delta: timedelta) -> str:
    """``2h05min``, ``40s``: whole units, largest first (for messages, not for parsing)."""
    seconds = max(0, round(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)
