"""When each log was last rotated (logrotate's state file, kept in the history store)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from wellkept.fs import shown_name
from wellkept.history.schema import log_rotations
from wellkept.history.store import HistoryStore
from wellkept.records import utcnow


def key(path: str) -> str:
    """``path`` as the store can hold it: the bytes of a name that is not UTF-8 (which
    Python holds as surrogates the database driver refuses) are written ``\\xff``."""
    return shown_name(path)


def last_rotated(store: HistoryStore, paths: list[str]) -> dict[str, datetime]:
    """The recorded rotation time of each of ``paths`` that has one."""
    out: dict[str, datetime] = {}
    keys = {key(p): p for p in paths}
    listed = list(keys)
    with store.engine.connect() as conn:
        for start in range(0, len(listed), 500):
            chunk = listed[start:start + 500]
            for row in conn.execute(sa.select(log_rotations.c.path, log_rotations.c.rotated_at)
                                    .where(log_rotations.c.path.in_(chunk))):
                out[keys[row.path]] = row.rotated_at
    return out


def record(store: HistoryStore, path: str, task: str, when: datetime) -> None:
    """Remember that ``path`` was rotated (or first seen) at ``when``."""
    with store.engine.begin() as conn:
        conn.execute(log_rotations.delete().where(log_rotations.c.path == key(path)))
        conn.execute(log_rotations.insert().values(path=key(path), task=task, rotated_at=when,
                                                   updated_at=utcnow()))


def forget(store: HistoryStore, path: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(log_rotations.delete().where(log_rotations.c.path == key(path)))
