"""When each log was last rotated (logrotate's state file, kept in the history store)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from wellkept.history.schema import log_rotations
from wellkept.history.store import HistoryStore
from wellkept.records import utcnow


def last_rotated(store: HistoryStore, paths: list[str]) -> dict[str, datetime]:
    """The recorded rotation time of each of ``paths`` that has one."""
    out: dict[str, datetime] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(paths), 500):
            chunk = paths[start:start + 500]
            for row in conn.execute(sa.select(log_rotations.c.path, log_rotations.c.rotated_at)
                                    .where(log_rotations.c.path.in_(chunk))):
                out[row.path] = row.rotated_at
    return out


def record(store: HistoryStore, path: str, task: str, when: datetime) -> None:
    """Remember that ``path`` was rotated (or first seen) at ``when``."""
    with store.engine.begin() as conn:
        conn.execute(log_rotations.delete().where(log_rotations.c.path == path))
        conn.execute(log_rotations.insert().values(path=path, task=task, rotated_at=when,
                                                   updated_at=utcnow()))


def forget(store: HistoryStore, path: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(log_rotations.delete().where(log_rotations.c.path == path))
