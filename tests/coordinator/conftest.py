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
