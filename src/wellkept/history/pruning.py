"""Prune records older than ``recovery.retention``: runs (with their checkpoints), slots,
recovery attempts, requests, stopped coordinators and finished Celery dispatches.

Nothing still in use is pruned: a running run, a run waiting in the recovery queue, a slot
whose run has not finished. Deletes go in batches, so the store is never locked for long.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from wellkept.history.schema import (
    checkpoints,
    coordinators,
    dispatches,
    recovery_attempts,
    recovery_queue,
    requests,
    runs,
    schedule_slots,
)
from wellkept.history.store import HistoryStore
from wellkept.types import RunStatus

BATCH = 2000


def prune(store: HistoryStore, older_than: datetime) -> dict[str, int]:
    """Delete what ended before ``older_than``; how many rows of each kind went."""
    counts = {"runs": 0, "checkpoints": 0, "slots": 0, "recovery_attempts": 0,
              "requests": 0, "coordinators": 0, "dispatches": 0}
    queued = sa.select(recovery_queue.c.run_id)
    while True:
        with store.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(sa.select(runs.c.run_id).where(
                runs.c.started_at < older_than, runs.c.status != str(RunStatus.RUNNING),
                runs.c.run_id.not_in(queued)).limit(BATCH))]
            if not ids:
                break
            counts["checkpoints"] += conn.execute(
                checkpoints.delete().where(checkpoints.c.run_id.in_(ids))).rowcount
            counts["runs"] += conn.execute(runs.delete().where(runs.c.run_id.in_(ids))).rowcount
    with store.engine.begin() as conn:
        counts["slots"] = conn.execute(schedule_slots.delete().where(
            schedule_slots.c.recorded_at < older_than,
            sa.or_(schedule_slots.c.finished_at.is_not(None),
                   schedule_slots.c.outcome.in_(["missed", "skipped"])))).rowcount
        counts["recovery_attempts"] = conn.execute(recovery_attempts.delete().where(
            recovery_attempts.c.started_at < older_than)).rowcount
        counts["requests"] = conn.execute(requests.delete().where(
            requests.c.requested_at < older_than)).rowcount
        counts["coordinators"] = conn.execute(coordinators.delete().where(
            coordinators.c.heartbeat_at < older_than)).rowcount
        counts["dispatches"] = conn.execute(dispatches.delete().where(
            dispatches.c.enqueued_at < older_than,
            dispatches.c.status == "finished")).rowcount
    return counts
