"""Runs sent to Celery workers (``executor: celery``), as the store sees them.

The broker only delivers; this table says what became of each run sent. A row is written
``queued`` before the message is published. A worker that receives the message claims the
row by compare-and-set (``queued`` to ``claimed``, with a fresh claim token); only one
claim can win, so a message delivered twice (redelivered after a visibility timeout, a lost
connection, published again) runs once, and the losers are counted in ``duplicates``. The
claimer finishes the row, fenced by its token, once the run's record is stored.

A row that stays ``queued`` lost its message (the broker restarted without persistence, a
worker died between taking the message and claiming it): the coordinator publishes it again
(``to_republish``). A ``claimed`` row whose run never got a record lost its worker before the
run started: it is handed back (``requeue_stale``). A claimed run whose record ends without
its worker (orphaned) is the recovery's business, like any interrupted run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.history.schema import dispatches, runs
from wellkept.history.store import HistoryStore
from wellkept.types import RunStatus

QUEUED, CLAIMED, FINISHED = "queued", "claimed", "finished"
#: on a PostgreSQL store, a finished dispatch is announced here (the coordinator LISTENs)
CHANNEL = "wellkept_dispatches"


@dataclass(frozen=True)
class Dispatch:
    run_id: str
    task: str
    target: str
    queue: str
    payload: dict[str, Any]
    status: str
    enqueued_at: datetime
    published_at: datetime | None
    publish_count: int
    claim_token: str | None
    claimed_at: datetime | None
    worker: str | None
    worker_pid: int | None
    worker_host_id: str | None
    duplicates: int
    finished_at: datetime | None
    outcome: str | None


_COLUMNS = [dispatches.c[f.name] for f in fields(Dispatch)]


def _rows(store: HistoryStore, query: Any) -> list[Dispatch]:
    with store.engine.connect() as conn:
        return [Dispatch(**dict(r)) for r in conn.execute(query).mappings()]


def create(store: HistoryStore, run_id: str, *, task: str, target: str, queue: str,
           payload: dict[str, Any], now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(dispatches.insert().values(
            run_id=run_id, task=task, target=target, queue=queue, payload=payload,
            status=QUEUED, enqueued_at=now, publish_count=0, duplicates=0))


def published(store: HistoryStore, run_id: str, now: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(dispatches.update().where(dispatches.c.run_id == run_id).values(
            published_at=now, publish_count=dispatches.c.publish_count + 1))


def get(store: HistoryStore, run_id: str) -> Dispatch | None:
    found = _rows(store, sa.select(*_COLUMNS).where(dispatches.c.run_id == run_id))
    return found[0] if found else None


def claim(store: HistoryStore, run_id: str, *, worker: str, pid: int, host_id: str,
          now: datetime) -> str | None:
    """Claim a queued run for this worker: its claim token, or None when it was already
    claimed or finished (or is unknown): then the message is a duplicate, counted."""
    token = str(uuid.uuid4())
    with store.engine.begin() as conn:
        done = conn.execute(dispatches.update().where(
            dispatches.c.run_id == run_id, dispatches.c.status == QUEUED).values(
            status=CLAIMED, claim_token=token, claimed_at=now, worker=worker,
            worker_pid=pid, worker_host_id=host_id))
        if done.rowcount == 1:
            return token
        conn.execute(dispatches.update().where(dispatches.c.run_id == run_id).values(
            duplicates=dispatches.c.duplicates + 1))
    return None


def finish(store: HistoryStore, run_id: str, token: str, now: datetime, outcome: str) -> bool:
    """Close the claimer's row; False when the claim was handed back meanwhile."""
    with store.engine.begin() as conn:
        done = conn.execute(dispatches.update().where(
            dispatches.c.run_id == run_id, dispatches.c.claim_token == token,
            dispatches.c.status == CLAIMED).values(status=FINISHED, finished_at=now,
                                                   outcome=outcome))
        if done.rowcount == 1 and not store.is_sqlite:
            # delivered at commit: the waiting coordinator learns of it at once
            conn.execute(sa.text("SELECT pg_notify(:channel, :run_id)"),
                         {"channel": CHANNEL, "run_id": run_id})
    return done.rowcount == 1


def ended(store: HistoryStore, run_ids: Iterable[str]) -> set[str]:
    """Of ``run_ids``: those whose dispatch finished, or whose run's record is final
    (orphaned or dead while its dispatch stayed claimed: its worker died)."""
    ids = list(run_ids)
    if not ids:
        return set()
    query = sa.select(dispatches.c.run_id).select_from(
        dispatches.outerjoin(runs, runs.c.run_id == dispatches.c.run_id)).where(
        dispatches.c.run_id.in_(ids),
        sa.or_(dispatches.c.status == FINISHED,
               sa.and_(runs.c.status.is_not(None), runs.c.status != str(RunStatus.RUNNING))))
    with store.engine.connect() as conn:
        return {r[0] for r in conn.execute(query)}


def to_republish(store: HistoryStore, now: datetime, after: timedelta) -> list[Dispatch]:
    """Queued runs not published, or last published more than ``after`` ago."""
    return _rows(store, sa.select(*_COLUMNS).where(
        dispatches.c.status == QUEUED,
        sa.or_(dispatches.c.published_at.is_(None), dispatches.c.published_at < now - after))
        .order_by(dispatches.c.enqueued_at))


def stale_claims(store: HistoryStore) -> list[Dispatch]:
    """Claimed runs that have no record yet (the caller decides whether the claimer died)."""
    has_run = sa.exists().where(runs.c.run_id == dispatches.c.run_id)
    return _rows(store, sa.select(*_COLUMNS).where(dispatches.c.status == CLAIMED,
                                                   ~has_run))


def requeue_stale(store: HistoryStore, item: Dispatch) -> bool:
    """Hand a claim back to the queue (compare-and-set on its token, and only while its run
    has no record)."""
    has_run = sa.exists().where(runs.c.run_id == dispatches.c.run_id)
    with store.engine.begin() as conn:
        done = conn.execute(dispatches.update().where(
            dispatches.c.run_id == item.run_id, dispatches.c.claim_token == item.claim_token,
            dispatches.c.status == CLAIMED, ~has_run).values(
            status=QUEUED, claim_token=None, claimed_at=None, worker=None, worker_pid=None,
            worker_host_id=None))
    return done.rowcount == 1


def close_ended(store: HistoryStore, now: datetime) -> int:
    """Finish the claimed rows whose run's record ended without its worker (orphaned, dead):
    the run's recovery, if any, has a dispatch of its own."""
    final = sa.select(runs.c.status).where(runs.c.run_id == dispatches.c.run_id,
                                           runs.c.status != str(RunStatus.RUNNING))
    with store.engine.begin() as conn:
        return conn.execute(dispatches.update().where(
            dispatches.c.status == CLAIMED, sa.exists(final)).values(
            status=FINISHED, finished_at=now,
            outcome=final.scalar_subquery())).rowcount


def counts(store: HistoryStore) -> dict[str, int]:
    """Rows by status, for status pages (finished ones included)."""
    with store.engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(
            sa.select(dispatches.c.status, sa.func.count()).group_by(dispatches.c.status))}
