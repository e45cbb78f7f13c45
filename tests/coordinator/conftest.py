"""Fixtures for the coordinator tests: the plugin tasks beside the config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PLUGIN = Path(__file__).with_name("plugin_tasks.py")


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """The test's folder, holding plugin_tasks.py (load it with `plugins: [plugin_tasks]`)."""
    shutil.copy(PLUGIN, tmp_path / "plugin_tasks.py")
    return tmp_path


@pytest.fixture
def private_pg(postgres_admin_url: str):  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL server of this test alone, to stop (and start again) under a
    running wellkept."""
    from tests.helpers import PrivatePostgres

    server = PrivatePostgres("a server the lease tests can stop")
    yield server
    server.remove()
