"""The API's lean page read gives exactly the RUN objects of ``list_runs`` (their JSON), on
SQLite and on the real PostgreSQL: every filter, the keyset cursor, ties, runs still running,
stored JSON nulls, and times cut to the millisecond as ``iso_z`` cuts them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wellkept.api.routes_runs import page_json
from wellkept.history.pages import moment, read_page
from wellkept.history.schema import runs
from wellkept.history.store import HistoryStore
from wellkept.records import RunRecord, iso_z
from wellkept.types import RunStatus, Trigger


def fill(store: HistoryStore) -> None:
    base = datetime(2026, 11, 22, 2, 0, 0, 999999, tzinfo=UTC)   # .999999 must read .999
    statuses = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.PARTIAL_FAILURE,
                RunStatus.SKIPPED]
    started = base
    for i in range(40):
        # every fifth run shares its start with the one before: ties, ordered by run id
        if i % 5 != 4:
            started = base - timedelta(minutes=i, microseconds=37 * i)
        record = RunRecord(run_id=str(uuid.uuid4()), task=f"t{i % 3}", kind="cleanup",
                           target="app", status=RunStatus.RUNNING, dry_run=i % 7 == 0,
                           trigger=Trigger.SCHEDULE if i % 2 else Trigger.API,
                           started_at=started, schedule="nightly" if i % 2 else None)
        store.start_run(record, {"table": "events"})
        if i % 9 == 4:
            continue  # still running: no finished_at, no duration
        store.finish_run(RunRecord(**{
            **record.__dict__, "status": statuses[i % 4],
            "finished_at": started + timedelta(seconds=i * 1.5, microseconds=1500),
            "duration_seconds": i * 1.5 + 0.0015, "message": f"run {i}: é ✓ \"quoted\"",
            "metrics": {"rows_deleted": i, "ratio": i / 7},
            "details": {"nested": {"a": [1, 2.5, None]}, "text": "…\n\t"},
            "errors": [f"boom {i}"] if i % 4 == 1 else []}))
    # a row as an older writer may have left it: JSON nulls where the RUN shows empties
    with store.engine.begin() as conn:
        conn.execute(runs.insert().values(
            run_id=str(uuid.uuid4()), task="t0", kind="stats", target="app",
            status="completed", dry_run=False, trigger="manual", started_at=base,
            message="", metrics=None, details=None, errors=None, params={}, host="", pid=0,
            attempt=1, priority=0))


def old_page(store: HistoryStore, **kw: Any) -> list[dict[str, Any]]:
    after = kw.pop("after", None)
    if after is not None:
        mark = store.get_run(after)
        assert mark is not None
        kw["after"] = (mark.started_at, mark.run_id)
    return [r.to_json() for r in store.list_runs(**kw)]


@pytest.mark.parametrize("kw", [
    {"limit": 50}, {"limit": 7}, {"limit": 10, "task": "t1"}, {"limit": 10, "status": "failed"},
    {"limit": 5, "offset": 12}, {"limit": 4, "task": "t2", "status": "completed", "offset": 1},
    {"limit": 50, "status": "running"},
])
def test_a_page_is_the_json_of_list_runs(store: HistoryStore, kw: dict[str, Any]) -> None:
    fill(store)
    page = read_page(store, **kw)
    assert page is not None and page
    assert json.loads(page_json(page)) == old_page(store, **kw)


def test_cursor_pages_walk_the_history_like_list_runs(store: HistoryStore) -> None:
    fill(store)
    every = old_page(store, limit=100)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = read_page(store, limit=6, cursor=cursor)
        assert page is not None
        if cursor is not None:
            assert json.loads(page_json(page)) == old_page(store, limit=6, after=cursor)
        seen += json.loads(page_json(page))
        if len(page) < 6:
            break
        cursor = page[-1].run_id
    assert seen == every
    # after the oldest run: an empty page, not an unknown cursor
    assert read_page(store, limit=5, cursor=every[-1]["run_id"]) == []
    assert read_page(store, limit=5, cursor=every[0]["run_id"], offset=100) == []
    assert read_page(store, limit=5, cursor="no-such-run") is None


def test_moments_read_as_iso_z_from_any_driver_value() -> None:
    aware = datetime(2026, 11, 22, 2, 0, 0, 105999, tzinfo=UTC)
    assert moment("2026-11-22 02:00:00.105999") == iso_z(aware) == "2026-11-22T02:00:00.105Z"
    assert moment(aware.astimezone(UTC).replace(tzinfo=None).isoformat(" ")[:19]) \
        == "2026-11-22T02:00:00.000Z"                    # text without microseconds
    assert moment(aware.astimezone(UTC)) == "2026-11-22T02:00:00.105Z"
    assert moment(None) is None
