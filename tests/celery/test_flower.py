"""Task names show clearly in Flower: each run appears as `wellkept.run TASK@TARGET`."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.celery.conftest import WriteCelery
from tests.celery.workers import STARTED, Worker
from tests.helpers import free_port, wait_for
from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.executors.celery import CeleryExecutor
from wellkept.types import RunStatus, Trigger


def _tasks(port: int) -> dict[str, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5) as resp:
            body: dict[str, dict[str, object]] = json.load(resp)
            return body
    except OSError:
        return {}


def test_runs_show_by_task_and_target_in_flower(celery_config: WriteCelery,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = celery_config("""\
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        tasks: {app-stats: {kind: stats, target: app}}
        """)
    (cfg.parent / "app.sqlite3").touch()
    worker = Worker(cfg, "w").wait_ready()
    port = free_port()
    monkeypatch.setenv("FLOWER_UNAUTHENTICATED_API", "true")   # its API, without a login
    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    assert celery is not None
    flower = Worker(cfg, "flower", command=[
        celery, "-A", "wellkept.integrations.celery", "flower", "--address=127.0.0.1",
        f"--port={port}"])
    assert flower in STARTED                      # killed with the workers at the end
    assert wait_for(lambda: "Visit me at" in flower.text() or flower.proc.poll() is not None,
                    60), flower.text()
    # Flower turns the workers' task events on when it starts
    assert wait_for(lambda: "Events of group {task} enabled" in worker.text(), 30), \
        worker.text()
    engine = Engine(load_config(cfg))
    executor = CeleryExecutor(engine)
    record = executor.run(engine.resolve(["app-stats"])[0], trigger=Trigger.MANUAL)
    executor.close()
    assert record.status is RunStatus.COMPLETED
    assert wait_for(lambda: record.run_id in _tasks(port), 30), flower.text()
    shown = _tasks(port)[record.run_id]
    assert shown["name"] == "wellkept.run app-stats@app"
    assert shown["state"] == "SUCCESS"
