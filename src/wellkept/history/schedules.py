"""Schedule state (paused, cursor, last and next fire) and the per-slot record.

A slot is claimed by inserting its ``(schedule, slot_at)`` row: the primary key lets exactly
one coordinator win, whatever the others do. Every slot that came due gets a row, whether it
ran, was missed or was skipped, so missed runs can be counted, alerted on and explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wellkept.history.schema import schedule_slots, schedule_state
from wellkept.history.store import HistoryStore, newest
from wellkept.scheduler import SlotDecision, SlotOutcome


@dataclass(frozen=True)
class ScheduleState:
    schedule: str
    paused: bool = False
    paused_at: datetime | None = None
    paused_by: str | None = None
    evaluated_through: datetime | None = None
    last_fire_at: datetime | None = None
    next_fire_at: datetime | None = None
    last_status: str | None = None


def states(store: HistoryStore) -> dict[str, ScheduleState]:
    cols = [schedule_state.c[k] for k in ScheduleState.__dataclass_fields__]
    with store.engine.connect() as conn:
        return {r["schedule"]: ScheduleState(**dict(r))
                for r in conn.execute(sa.select(*cols)).mappings()}


def _upsert(store: HistoryStore, schedule: str, now: datetime, **values: Any) -> None:
    """Update the schedule's state row, creating it on first use."""
    def update() -> int:
        with store.engine.begin() as conn:
            return conn.execute(schedule_state.update().where(
                schedule_state.c.schedule == schedule).values(updated_at=now, **values)).rowcount

    if update():
        return
    try:
        with store.engine.begin() as conn:
            conn.execute(schedule_state.insert().values(
                schedule=schedule, updated_at=now, **{"paused": False, **values}))
    except sa.exc.IntegrityError:  # another process created it meanwhile
        update()


def set_paused(store: HistoryStore, schedule: str, paused: bool, now: datetime,
               by: str) -> bool:
    """Pause or resume; False when it already was so."""
    current = states(store).get(schedule)
    if current is not None and current.paused == paused:
        return False
    _upsert(store, schedule, now, paused=paused, paused_at=now if paused else None,
            paused_by=by if paused else None)
    return True


def advance(store: HistoryStore, schedule: str, now: datetime, *,
            evaluated_through: datetime | None, next_fire_at: datetime | None) -> None:
    _upsert(store, schedule, now, evaluated_through=evaluated_through,
            next_fire_at=next_fire_at)


def mark_fired(store: HistoryStore, schedule: str, slot_at: datetime, now: datetime) -> None:
    _upsert(store, schedule, now, last_fire_at=slot_at)


# --- slots --------------------------------------------------------------------------------------


def claim_slot(store: HistoryStore, schedule: str, decision: SlotDecision, now: datetime,
               coordinator_id: str) -> bool:
    """Record the slot's outcome; True only for the one process whose insert won."""
    try:
        with store.engine.begin() as conn:
            conn.execute(schedule_slots.insert().values(
                schedule=schedule, slot_at=decision.slot_at, outcome=str(decision.outcome),
                cause=str(decision.cause) if decision.cause else None, detail=decision.detail,
                covers=decision.covers, recorded_at=now, claimed_by=coordinator_id,
                late_seconds=decision.late_seconds(now) if decision.runs else None,
                run_ids=[]))
    except sa.exc.IntegrityError:
        return False
    return True


def slot_started(store: HistoryStore, schedule: str, slot_at: datetime, now: datetime,
                 coordinator_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(schedule_slots.update().where(*_key(schedule, slot_at)).values(
            outcome=str(SlotOutcome.RAN), started_at=now, claimed_by=coordinator_id,
            late_seconds=(now - slot_at).total_seconds()))


def slot_add_run(store: HistoryStore, schedule: str, slot_at: datetime, run_id: str) -> None:
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(schedule_slots.c.run_ids).where(
            *_key(schedule, slot_at))).first()
        ids = list(row[0] or []) if row else []
        if run_id not in ids:
            conn.execute(schedule_slots.update().where(*_key(schedule, slot_at))
                         .values(run_ids=[*ids, run_id]))


def slot_finished(store: HistoryStore, schedule: str, slot_at: datetime, now: datetime,
                  status: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(schedule_slots.update().where(*_key(schedule, slot_at)).values(
            finished_at=now, status=status))
    _upsert(store, schedule, now, last_status=status)


def slot_outcome(store: HistoryStore, schedule: str, slot_at: datetime, now: datetime,
                 outcome: SlotOutcome, cause: str, detail: str) -> None:
    """Change a queued slot's outcome (it never started: the window closed, a shutdown)."""
    with store.engine.begin() as conn:
        conn.execute(schedule_slots.update().where(*_key(schedule, slot_at)).values(
            outcome=str(outcome), cause=cause, detail=detail, finished_at=now))


def release_slot(store: HistoryStore, schedule: str, slot_at: datetime) -> None:
    """Hand a queued slot back (a clean shutdown before it started): the next coordinator
    decides again whether it still runs."""
    with store.engine.begin() as conn:
        conn.execute(schedule_slots.update().where(*_key(schedule, slot_at)).values(
            claimed_by=None))


def take_over_slot(store: HistoryStore, schedule: str, slot_at: datetime, previous: str | None,
                   coordinator_id: str) -> bool:
    """Claim an unfinished slot whose coordinator is gone (compare-and-set on claimed_by)."""
    owner = (schedule_slots.c.claimed_by.is_(None) if previous is None
             else schedule_slots.c.claimed_by == previous)
    with store.engine.begin() as conn:
        done = conn.execute(schedule_slots.update().where(
            *_key(schedule, slot_at), owner, schedule_slots.c.finished_at.is_(None))
            .values(claimed_by=coordinator_id))
    return done.rowcount == 1


def unfinished_slots(store: HistoryStore, me: str) -> list[dict[str, Any]]:
    """Slots claimed to run that have not finished and that this coordinator does not hold
    (the caller decides whether their holder is gone)."""
    query = sa.select(schedule_slots).where(
        schedule_slots.c.outcome.in_([str(SlotOutcome.QUEUED), str(SlotOutcome.RAN)]),
        schedule_slots.c.finished_at.is_(None),
        sa.or_(schedule_slots.c.claimed_by.is_(None), schedule_slots.c.claimed_by != me),
    ).order_by(schedule_slots.c.slot_at)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def in_progress(store: HistoryStore, schedule: str) -> bool:
    """Whether a run of this schedule is queued or going (for the overlap rule)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schedule_slots).where(
            schedule_slots.c.schedule == schedule,
            schedule_slots.c.outcome.in_([str(SlotOutcome.QUEUED), str(SlotOutcome.RAN)]),
            schedule_slots.c.finished_at.is_(None))).scalar_one() > 0


def get_slot(store: HistoryStore, schedule: str, slot_at: datetime) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(schedule_slots).where(*_key(schedule, slot_at))) \
            .mappings().first()
    return dict(row) if row else None


def list_slots(store: HistoryStore, *, schedule: str | None = None, limit: int = 50,
               since: datetime | None = None,
               outcomes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Slots, newest first."""
    return newest(store, schedule_slots, schedule_slots.c.slot_at, limit=limit, where=(
        schedule_slots.c.schedule == schedule if schedule else None,
        schedule_slots.c.slot_at >= since if since else None,
        schedule_slots.c.outcome.in_(outcomes) if outcomes else None))


def _key(schedule: str, slot_at: datetime) -> tuple[Any, ...]:
    return (schedule_slots.c.schedule == schedule, schedule_slots.c.slot_at == slot_at)
