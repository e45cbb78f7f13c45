"""Fixtures for the API tests: a config over a real SQLite app database, an in-process app,
and a real `wellkept serve --listen` process."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import TOKEN
from tests.helpers import free_port, make_app_db

CONFIG = """\
targets:
  app: {{url: "sqlite:///app.sqlite3"}}
tasks:
  purge: {{kind: cleanup, target: app, table: events, date_column: created_at,
          retention: 30d, batch_size: 500}}
  app-stats: {{kind: stats, target: app}}
  health-check: {{kind: health}}
schedules:
  nightly: {{cron: "0 2 * * *", tasks: [purge]}}
  hourly-stats: {{cron: "0 * * * *", tasks: [app-stats]}}
coordinator: {{heartbeat: 1s, leader_lease: 5s, reap_every: 1s}}
api: {{listen: "127.0.0.1:{port}", tokens: {tokens}}}
"""


@pytest.fixture
def api_config(tmp_path: Path) -> Callable[..., Path]:
    """Write the API tests' config beside a fresh app database (3000 old rows, 1000 fresh);
    returns its path."""

    def write(tokens: list[str] | None = None, port: int | None = None,
              extra: str = "") -> Path:
        if not (tmp_path / "app.sqlite3").exists():
            make_app_db(tmp_path / "app.sqlite3")
        path = tmp_path / "wellkept.yml"
        path.write_text(CONFIG.format(port=port or free_port(),
                                      tokens=json.dumps([TOKEN] if tokens is None else tokens))
                        + textwrap.dedent(extra), encoding="utf-8")
        return path

    return write


@pytest.fixture
def client(api_config: Callable[..., Path]) -> Iterator[Any]:
    """A TestClient over create_app(engine) (no coordinator: the app's own pool)."""
    from fastapi.testclient import TestClient

    from wellkept.api import create_app
    from wellkept.config import load_config
    from wellkept.engine import Engine

    engine = Engine(load_config(api_config()))
    with TestClient(create_app(engine)) as test_client:
        test_client.engine = engine  # type: ignore[attr-defined]
        yield test_client

