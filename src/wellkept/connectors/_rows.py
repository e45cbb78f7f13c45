"""Streaming a DB-API cursor's result in batches (what each SQL connector's ``read_query``
hands out), so that no caller ever holds a whole table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wellkept.connector import RowStream


def stream(cursor: Any, batch_size: int) -> RowStream:
    """The cursor's columns and its rows ``batch_size`` at a time (``fetchmany``)."""
    columns = [d[0] if isinstance(d, tuple | list) else d.name for d in cursor.description or ()]

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield [tuple(r) for r in rows]

    return RowStream(columns=columns, batches=batches())
