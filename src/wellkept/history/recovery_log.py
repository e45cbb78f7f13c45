"""The recovery queue and the record of every recovery attempt.

An interrupted run (orphaned: its lease expired; or stopped at a checkpoint by a shutdown) is
queued with its priority. A recoverer claims an entry by compare-and-set, runs the recovery,
and removes the entry when that run ends. A claim whose claimer died before starting the
recovery run can be taken again after ``CLAIM_TTL``; a recovery run that is itself interrupted
is queued in its turn (it replaces the entry of the run it was recovering).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.history.schema import recovery_attempts, recovery_queue, runs
from wellkept.history.store import HistoryStore, newest
from wellkept.types import RunStatus

CLAIM_TTL = timedelta(minutes=5)


@dataclass(frozen=True)
class RunState:
    """A run row as recovery sees it: identity, lease, progress and parameters."""

    run_id: str
    task: str
    kind: str
    target: str
    status: str
    trigger: str
    dry_run: bool
    attempt: int
    host: str
    host_id: str | None
    pid: int
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    lease_until: datetime | None
    deadline_at: datetime | None
    progress_percent: float | None
    progress_step: str | None
    progress_at: datetime | None
    priority: int
    params: dict[str, Any]
    schedule: str | None
    scheduled_for: datetime | None
    recovery_of: str | None

    def lease_expired(self, now: datetime, default_lease: timedelta) -> bool:
        """Expired lease; a row that never heartbeat falls back to its start time."""
        if self.lease_until is not None:
            return self.lease_until < now
        return (self.heartbeat_at or self.started_at) + default_lease < now


_COLUMNS = [runs.c[f.name] for f in fields(RunState)]


def _state(row: Any) -> RunState:
    data = dict(row)
    data["params"] = data["params"] or {}
    data["dry_run"] = bool(data["dry_run"])
    data["priority"] = data["priority"] or 0
    return RunState(**data)


def running(store: HistoryStore) -> list[RunState]:
    with store.engine.connect() as conn:
        return [_state(r) for r in conn.execute(
            sa.select(*_COLUMNS).where(runs.c.status == str(RunStatus.RUNNING))
            .order_by(runs.c.started_at)).mappings()]


def get_state(store: HistoryStore, run_id: str) -> RunState | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(runs.c.run_id == run_id)).mappings() \
            .first()
    return _state(row) if row else None


def previous_run(store: HistoryStore, task: str, kind: str, target: str,
                 before: str) -> RunState | None:
    """The latest earlier non-dry run of this task (of this kind) on this target that was not
    skipped (a skipped run did no work, so the one before it is what a new run may
    continue)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(*_COLUMNS).where(runs.c.task == task, runs.c.kind == kind,
                                       runs.c.target == target,
                                       runs.c.run_id != before, runs.c.dry_run.is_(False),
                                       runs.c.status != str(RunStatus.SKIPPED))
            .order_by(runs.c.started_at.desc()).limit(1)).mappings().first()
    return _state(row) if row else None


def close_interrupted(store: HistoryStore, run: RunState, now: datetime, status: RunStatus,
                      message: str, details: dict[str, Any] | None = None) -> bool:
    """End a running row found interrupted, by compare-and-set on (status, attempt): False
    when its worker finished it, or another recoverer closed it, first."""
    values: dict[str, Any] = {"status": str(status), "finished_at": now, "message": message,
                              "lease_until": None,
                              "errors": [message],
                              "duration_seconds": round((now - run.started_at).total_seconds(),
                                                        3)}
    if details is not None:
        values["details"] = details
    with store.engine.begin() as conn:
        done = conn.execute(runs.update().where(
            runs.c.run_id == run.run_id, runs.c.attempt == run.attempt,
            runs.c.status == str(RunStatus.RUNNING)).values(**values))
    return done.rowcount == 1


def annotate(store: HistoryStore, run_id: str, key: str, value: Any) -> None:
    """Add one key to a finished run's details (e.g. ``recovered_by``)."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(runs.c.details).where(runs.c.run_id == run_id)).first()
        if row is None:
            return
        conn.execute(runs.update().where(runs.c.run_id == run_id)
                     .values(details={**(row[0] or {}), key: value}))


def set_status(store: HistoryStore, run_id: str, status: RunStatus, message: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == run_id)
                     .values(status=str(status), message=message))


# --- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    run_id: str
    task: str
    target: str
    priority: int
    reason: str
    detail: str
    enqueued_at: datetime
    not_before: datetime
    claimed_by: str | None
    claimed_at: datetime | None


def enqueue(store: HistoryStore, run: RunState, reason: str, detail: str, now: datetime,
            not_before: datetime | None = None) -> bool:
    """Queue an interrupted run; a recovery run replaces the entry of the run it recovered."""
    try:
        with store.engine.begin() as conn:
            if run.recovery_of:
                conn.execute(recovery_queue.delete().where(
                    recovery_queue.c.run_id == run.recovery_of))
            conn.execute(recovery_queue.insert().values(
                run_id=run.run_id, task=run.task, target=run.target, priority=run.priority,
                reason=reason, detail=detail, enqueued_at=now, not_before=not_before or now))
    except sa.exc.IntegrityError:
        return False
    return True


def queue(store: HistoryStore, *, ready_at: datetime | None = None,
          unclaimed_at: datetime | None = None) -> list[QueueEntry]:
    """Entries, highest priority first, then oldest. ``ready_at``: only those whose backoff
    has passed; ``unclaimed_at``: only those free to claim at that moment."""
    query = sa.select(recovery_queue).order_by(recovery_queue.c.priority.desc(),
                                               recovery_queue.c.enqueued_at)
    if ready_at is not None:
        query = query.where(recovery_queue.c.not_before <= ready_at)
    if unclaimed_at is not None:
        query = query.where(_claimable(unclaimed_at))
    with store.engine.connect() as conn:
        return [QueueEntry(**dict(r)) for r in conn.execute(query).mappings()]


def _claimable(now: datetime) -> Any:
    # a claim older than CLAIM_TTL is free again, unless its recovery run is going (a long
    # recovery, or one running on a Celery worker, must not get a second recoverer)
    recovering = sa.exists().where(runs.c.recovery_of == recovery_queue.c.run_id,
                                   runs.c.status == str(RunStatus.RUNNING))
    return sa.or_(recovery_queue.c.claimed_by.is_(None),
                  sa.and_(recovery_queue.c.claimed_at < now - CLAIM_TTL, ~recovering))


def claim(store: HistoryStore, run_id: str, claimer: str, now: datetime) -> bool:
    with store.engine.begin() as conn:
        done = conn.execute(recovery_queue.update().where(
            recovery_queue.c.run_id == run_id, _claimable(now)).values(
            claimed_by=claimer, claimed_at=now))
    return done.rowcount == 1


def refresh_claims(store: HistoryStore, claimer: str, run_ids: list[str],
                   now: datetime) -> int:
    """Renew ``claimer``'s claims on these entries (a recovery waiting on a Celery queue
    keeps its claim); how many it still holds."""
    if not run_ids:
        return 0
    with store.engine.begin() as conn:
        return conn.execute(recovery_queue.update().where(
            recovery_queue.c.run_id.in_(run_ids), recovery_queue.c.claimed_by == claimer)
            .values(claimed_at=now)).rowcount


def release(store: HistoryStore, run_id: str, claimer: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(recovery_queue.update().where(
            recovery_queue.c.run_id == run_id, recovery_queue.c.claimed_by == claimer)
            .values(claimed_by=None, claimed_at=None))


def dequeue(store: HistoryStore, run_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(recovery_queue.delete().where(recovery_queue.c.run_id == run_id))


# --- attempts -----------------------------------------------------------------------------------


def start_attempt(store: HistoryStore, **values: Any) -> int:
    with store.engine.begin() as conn:
        key = conn.execute(recovery_attempts.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_attempt(store: HistoryStore, attempt_id: int, now: datetime, outcome: str,
                   error: str | None = None, recovery_run_id: str | None = None) -> None:
    values: dict[str, Any] = {"finished_at": now, "outcome": outcome, "error": error}
    if recovery_run_id:
        values["recovery_run_id"] = recovery_run_id
    with store.engine.begin() as conn:
        conn.execute(recovery_attempts.update().where(recovery_attempts.c.id == attempt_id)
                     .values(**values))


def attempts(store: HistoryStore, *, run_id: str | None = None, since: datetime | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    """Recovery attempts, newest first."""
    return newest(store, recovery_attempts, recovery_attempts.c.id, limit=limit, where=(
        recovery_attempts.c.run_id == run_id if run_id else None,
        recovery_attempts.c.started_at >= since if since else None))


def close_open_attempts(store: HistoryStore, recovery_run_id: str, now: datetime,
                        outcome: str, error: str) -> None:
    """Attempts whose recovery run was itself interrupted never got their outcome: set it."""
    with store.engine.begin() as conn:
        conn.execute(recovery_attempts.update().where(
            recovery_attempts.c.recovery_run_id == recovery_run_id,
            recovery_attempts.c.finished_at.is_(None)).values(
            finished_at=now, outcome=outcome, error=error))


def entry(store: HistoryStore, run_id: str) -> QueueEntry | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(recovery_queue).where(
            recovery_queue.c.run_id == run_id)).mappings().first()
    return QueueEntry(**dict(row)) if row else None


def postpone(store: HistoryStore, run_id: str, claimer: str, not_before: datetime) -> None:
    """Hand a claimed entry back to be tried again after ``not_before``."""
    with store.engine.begin() as conn:
        conn.execute(recovery_queue.update().where(
            recovery_queue.c.run_id == run_id, recovery_queue.c.claimed_by == claimer)
            .values(claimed_by=None, claimed_at=None, not_before=not_before))
