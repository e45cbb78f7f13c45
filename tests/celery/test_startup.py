"""Misconfiguration fails at start, with the reason; `celery -A wellkept.integrations.celery
worker` is the same worker as `wellkept worker`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.celery.conftest import WriteCelery
from tests.celery.workers import Worker
from tests.coordinator.helpers import ledger
from tests.helpers import free_port, run_cli
from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.executors.celery import CeleryExecutor
from wellkept.types import RunStatus, Trigger


def _write(folder: Path, state: str, broker: str) -> Path:
    path = folder / "wellkept.yml"
    path.write_text(textwrap.dedent(f"""\
        state: "{state}"
        executor: {{kind: celery, broker: "{broker}"}}
        tasks: {{s: {{kind: stats, target: host}}}}
        """), encoding="utf-8")
    return path


def test_an_sqlite_state_store_with_celery_is_refused_at_start(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "sqlite:///state.db", "redis://127.0.0.1:6379/5")
    for command in (["worker"], ["serve"], ["check"]):
        done = run_cli("-c", str(cfg), *command, timeout=60)
        assert done.returncode == 2, (command, done.stderr)
        assert "executor.kind: celery needs a state store that every worker shares, but " \
               "state is 'sqlite:///" in done.stderr
        assert "use state: postgresql://" in done.stderr


def test_an_unreachable_broker_fails_the_worker_and_the_coordinator_at_start(
        tmp_path: Path, postgres_db: str) -> None:
    port = free_port()                          # nothing listens there
    for url in (f"redis://127.0.0.1:{port}/5", f"amqp://guest:secret@127.0.0.1:{port}//"):
        cfg = _write(tmp_path, postgres_db, url)
        for command in (["worker"], ["serve"]):
            done = run_cli("-c", str(cfg), *command, timeout=60)
            assert done.returncode == 1, (url, command, done.stderr)
            assert f"cannot reach the Celery broker {url.replace('secret', '***')} " \
                   "(executor.broker)" in done.stderr, done.stderr
            assert "secret" not in done.stderr
        celery = shutil.which("celery", path=str(Path(sys.executable).parent))
        assert celery is not None
        raw = subprocess.run([celery, "-A", "wellkept.integrations.celery", "worker", "-c", "1"],
                             env={"WELLKEPT_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, timeout=90, check=False)
        assert raw.returncode != 0, raw.stderr   # no endless retrying at start
        assert "broker_connection_retry_on_startup=False). Shutting down" in raw.stderr, \
            raw.stderr                            # it gave up on the broker (not, say, an import)
        assert "secret" not in raw.stdout + raw.stderr


def test_a_celery_command_worker_runs_wellkepts_tasks(celery_config: WriteCelery,
                                                      queue: str) -> None:
    cfg = celery_config("tasks: {t: {kind: tick}}\n")
    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    assert celery is not None
    worker = Worker(cfg, "raw", command=[celery, "-A", "wellkept.integrations.celery", "worker",
                                         "-Q", queue, "-c", "1", "-n", "raw@%h",
                                         "--loglevel", "INFO"]).wait_ready()
    engine = Engine(load_config(cfg))
    executor = CeleryExecutor(engine)
    executor.start()
    try:
        record = executor.run(engine.resolve(["t"])[0], trigger=Trigger.MANUAL)
    finally:
        executor.close()
    assert record.status is RunStatus.COMPLETED, worker.text()
    assert record.details["celery"]["worker"].startswith("raw@") and worker.owns(record.pid)
    assert [row[1] for row in ledger(cfg.parent)] == [record.run_id]
    assert "wellkept.run t@host" in worker.text()   # the run's name in the worker's log
