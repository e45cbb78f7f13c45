"""Pages of run history as the API answers them, read lean.

``HistoryStore.list_runs`` makes a full ``RunRecord`` of each row: every column, the JSON
columns decoded, the times parsed into aware datetimes. A page of ``GET
/maintenance/history`` shows 14 of the 30 columns and turns them straight back into JSON, so
for it that work was most of the cost (about 2.5 of 3.5 ms of CPU for 50 runs of 10,000, SQLite;
the query itself took 0.2 ms). ``read_page`` instead selects only what the RUN object shows,
reads the three free-form JSON columns as the text the store holds (the answer carries that
text as it is, never decoded and encoded again), and formats the times from what the driver
hands back. Its statements are built once per combination of filters, with bound values.

The order and the keyset are ``list_runs``'s: newest first, ties by run id, and a page given a
cursor (a run id) starts right after that run.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from wellkept.history.schema import runs
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z


class PageRun(NamedTuple):
    """One run of a page: CONTRACT §3's RUN fields, in its order, ready for JSON. ``metrics``,
    ``details`` and ``errors`` are JSON text as stored (an object, an object, an array)."""

    run_id: str
    task: str
    kind: str
    target: str
    status: str
    dry_run: bool
    trigger: str
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    message: str
    metrics: str
    details: str
    errors: str


def read_page(store: HistoryStore, *, limit: int, task: str | None = None,
              status: str | None = None, cursor: str | None = None,
              offset: int = 0) -> list[PageRun] | None:
    """Up to ``limit`` runs, newest first, of ``task`` and in ``status`` when given, starting
    right after the run ``cursor`` (None when that run is not in the store) and skipping
    ``offset`` more."""
    values: dict[str, Any] = {"limit": limit, "task": task, "status": status,
                              "offset": offset, "cursor": cursor}
    with store.engine.connect() as conn:
        rows = conn.execute(_page_query(bool(task), bool(status), bool(cursor), offset > 0),
                            values).all()
        # the cursor's run is read inside the page statement; only an empty page says whether
        # it was the last run or not a run at all
        if cursor and not rows and conn.execute(_MARK, values).first() is None:
            return None
    return [PageRun(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], moment(r[7]), moment(r[8]),
                    r[9], r[10] or "", _json(r[11], "{}"), _json(r[12], "{}"),
                    _json(r[13], "[]")) for r in rows]


def moment(value: str | datetime | None) -> str | None:
    """A stored time as the JSON output writes it (``iso_z``), from what the driver returned:
    SQLite's text, which SQLAlchemy writes in UTC as ``2026-11-22 02:00:00.105123``, is
    rearranged without parsing (the milliseconds cut, not rounded, as ``iso_z`` does);
    anything else (PostgreSQL's datetime, text in another form) goes through ``iso_z``."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:23]}Z"
        value = datetime.fromisoformat(value)  # naive text is UTC, as UTCDateTime reads it
    return iso_z(value)


def _json(text: str | None, empty: str) -> str:
    # the stored JSON null (or SQL NULL) reads as the empty value, as RunRecord's defaults do
    return empty if text is None or text == "null" else text


#: the run a cursor names: where its page starts
_MARK = sa.select(runs.c.started_at).where(runs.c.run_id == sa.bindparam("cursor"))


@functools.cache
def _page_query(task: bool, status: bool, after: bool, offset: bool) -> sa.Select[Any]:
    """The page statement for one combination of filters (built, and its cache key made,
    once): the RUN columns, the times untyped (the driver's own value: see ``moment``) and the
    JSON as text (CAST, so that PostgreSQL's driver does not decode it either)."""
    query = sa.select(
        runs.c.run_id, runs.c.task, runs.c.kind, runs.c.target, runs.c.status, runs.c.dry_run,
        runs.c.trigger, sa.type_coerce(runs.c.started_at, sa.String),
        sa.type_coerce(runs.c.finished_at, sa.String), runs.c.duration_seconds, runs.c.message,
        sa.cast(runs.c.metrics, sa.Text), sa.cast(runs.c.details, sa.Text),
        sa.cast(runs.c.errors, sa.Text),
    ).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(sa.bindparam("limit"))
    if after:
        at = _MARK.scalar_subquery()
        # the plain range first, so that the index on started_at bounds the scan (as in
        # list_runs: an OR of the two cases alone made SQLite walk it from the newest run)
        query = query.where(runs.c.started_at <= at, sa.or_(
            runs.c.started_at < at, runs.c.run_id > sa.bindparam("cursor")))
    if task:
        query = query.where(runs.c.task == sa.bindparam("task"))
    if status:
        query = query.where(runs.c.status == sa.bindparam("status"))
    if offset:
        query = query.offset(sa.bindparam("offset"))
    return query
