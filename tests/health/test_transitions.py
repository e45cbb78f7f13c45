"""Two first health checks at once (two cron jobs, two machines on one store) both find no
state for a target and both insert it: the one that loses reads the winner's row and goes on,
instead of logging an ERROR and repeating the WARNING the winner already gave."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from wellkept.health.transitions import note_transitions
from wellkept.history.store import HistoryStore


def down(name: str) -> dict[str, Any]:
    return {"status": "down", "latency_ms": None, "error": f"{name} refused",
            "problem": "unreachable"}


def test_the_loser_of_a_first_insert_race_reads_the_winner_and_logs_no_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.prepare()
        raced: list[str] = []

        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def other_check_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith("INSERT INTO wk_target_status") and not raced:
                raced.append(statement)  # another process inserts "a" just before this one
                other = sqlite3.connect(tmp_path / "state.db", timeout=30)
                other.execute("INSERT INTO wk_target_status (target, status, since, "
                              "checked_at, error) VALUES ('a', 'down', '2026-12-07 00:00:00',"
                              " '2026-12-07 00:00:00', 'a refused')")
                other.commit()
                other.close()

        caplog.set_level(logging.DEBUG, logger="wellkept.health")
        before = note_transitions(store, {"a": down("a"), "b": down("b")}, ["a", "b"])
        assert raced
        assert before == {"a": "down"}            # the winner's record, read on the retry
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warned == ["b is down: b refused"]  # "a" was the winner's to announce
        with store.engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT target, status FROM wk_target_status")).all())
        assert rows == {"a": "down", "b": "down"}
    finally:
        store.close()


def test_a_change_another_check_recorded_meanwhile_is_not_logged_twice(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.prepare()
        up = {"status": "up", "latency_ms": 1.0, "error": None}
        note_transitions(store, {"a": up}, ["a"])  # both checks read "up" ...
        raced: list[str] = []

        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def other_check_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith("UPDATE wk_target_status") and not raced:
                raced.append(statement)  # ... and the other one records "down" first
                other = sqlite3.connect(tmp_path / "state.db", timeout=30)
                other.execute("UPDATE wk_target_status SET status = 'down' WHERE target = 'a'")
                other.commit()
                other.close()

        caplog.set_level(logging.DEBUG, logger="wellkept.health")
        before = note_transitions(store, {"a": down("a")}, ["a"])
        assert raced and before == {"a": "down"}  # read again after the race
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        store.close()
