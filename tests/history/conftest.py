"""Fixtures of the state store tests: a store on each backend wellkept supports."""

from __future__ import annotations

from pathlib import Path

import pytest

from wellkept.history.store import HistoryStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An empty store, once on SQLite and once on a fresh PostgreSQL database."""
    url = (f"sqlite:///{tmp_path}/state/state.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_db"))
    s = HistoryStore(url)
    yield s
    s.close()
