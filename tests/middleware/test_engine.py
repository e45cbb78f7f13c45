"""The engine's middleware chain: history rows, error isolation, timeouts and target locks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.middleware.sample_tasks import SAMPLE_TASKS
from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.errors import UsageError
from wellkept.history.store import HistoryStore
from wellkept.registry import Registry
from wellkept.types import RunStatus

CONFIG = """\
targets:
  app: {{url: "sqlite:///{db}"}}
  same-file: {{url: "sqlite:///{db}"}}
  down: {{url: "sqlite:///missing.sqlite3"}}
tasks:
  boom: {{kind: boom, target: app}}
  fine: {{kind: fine, target: app}}
  nap: {{kind: sleepy, target: app, seconds: 3, lock_wait: 0.5s}}
  nap-same: {{kind: sleepy, target: same-file, seconds: 0.1, lock_wait: 0.5s}}
  nap-same-patient: {{kind: sleepy, target: same-file, seconds: 0.1, lock_wait: 10s}}
  quick-nap: {{kind: sleepy, target: app, seconds: 0.1, lock_wait: 10s}}
  hang: {{kind: hang, target: app, timeout: 1s}}
  stats-down: {{kind: stats, target: down}}
  stats: {{kind: stats, target: app}}
"""


@pytest.fixture
def registry() -> Registry:
    reg = Registry.default()
    reg.tasks.update(SAMPLE_TASKS)
    return reg


@pytest.fixture
def engine(write_config: Callable[..., Path], app_db: Path, registry: Registry) -> Engine:
    path = write_config(CONFIG.format(db=app_db.name))
    return Engine(load_config(path, registry=registry), registry=registry)


def test_one_failing_task_does_not_stop_the_others(engine: Engine) -> None:
    batch = engine.run(engine.resolve(["boom", "stats-down", "fine", "stats"]))
    statuses = [str(r.status) for r in batch.results]
    assert statuses == ["failed", "failed", "completed", "completed"]
    assert str(batch.status) == "partial_failure"
    assert batch.exit_code == 1
    boom, down = batch.results[0], batch.results[1]
    assert "kaboom in the task" in boom.message
    assert "Traceback" in boom.errors[0] and "RuntimeError" in boom.errors[0]
    assert "no SQLite database file" in down.message
    assert "Traceback" not in " ".join(down.errors)  # expected unavailability: no traceback


def test_every_run_is_recorded_before_and_after(engine: Engine) -> None:
    seen: list[str] = []
    store = engine.store
    original = store.start_run

    def spy(record, params, **lease):  # type: ignore[no-untyped-def]
        original(record, params, **lease)
        seen.append(str(store.get_run(record.run_id).status))  # type: ignore[union-attr]

    store.start_run = spy  # type: ignore[method-assign]
    batch = engine.run(engine.resolve(["fine", "boom"]))
    assert seen == ["running", "running"]
    stored = {r.run_id: r for r in store.list_runs(limit=10)}
    for record in batch.results:
        row = stored[record.run_id]
        assert row.status == record.status and row.finished_at is not None
        assert row.pid == os.getpid() and row.host
        assert row.to_json() == record.to_json()


def test_timeout_interrupts_a_hung_statement(engine: Engine) -> None:
    t0 = time.monotonic()
    batch = engine.run(engine.resolve(["hang", "fine"]))
    elapsed = time.monotonic() - t0
    hang, fine = batch.results
    assert hang.status is RunStatus.FAILED
    assert "timed out after 1s" in hang.message
    assert "interrupted" in hang.message
    assert fine.status is RunStatus.COMPLETED
    assert elapsed < 5, elapsed


def test_cooperative_timeout_stops_a_sleeping_task(engine: Engine,
                                                   write_config: Callable[..., Path],
                                                   app_db: Path, registry: Registry) -> None:
    path = write_config(CONFIG.format(db=app_db.name) +
                        "  long-nap: {kind: sleepy, target: app, seconds: 30, timeout: 0.5s}\n")
    eng = Engine(load_config(path, registry=registry), registry=registry)
    t0 = time.monotonic()
    (record,) = eng.run(eng.resolve(["long-nap"])).results
    assert record.status is RunStatus.FAILED and "timed out after 0.5s" in record.message
    assert time.monotonic() - t0 < 3


def test_mutating_runs_on_one_database_never_overlap(engine: Engine) -> None:
    """`nap` holds the database; `nap-same` (another target name, same file) must wait and
    give up after its lock_wait, naming the holder."""
    results = {}
    holder = threading.Thread(target=lambda: results.setdefault(
        "nap", engine.run(engine.resolve(["nap"])).results[0]))
    holder.start()
    time.sleep(0.5)
    (blocked,) = engine.run(engine.resolve(["nap-same"])).results
    holder.join()
    assert blocked.status is RunStatus.SKIPPED
    assert "busy" in blocked.message and "locked by run" in blocked.message
    assert "(nap)" in blocked.message
    assert results["nap"].status is RunStatus.COMPLETED


def test_a_waiting_run_proceeds_when_the_lock_is_released(engine: Engine) -> None:
    first: dict[str, object] = {}
    t = threading.Thread(target=lambda: first.setdefault(
        "r", engine.run(engine.resolve(["nap-same-patient"])).results[0]))
    t.start()
    (second,) = engine.run(engine.resolve(["quick-nap"])).results
    t.join()
    a, b = first["r"], second
    assert a.status is RunStatus.COMPLETED and b.status is RunStatus.COMPLETED  # type: ignore[attr-defined]
    spans = sorted([(r.details["lock"]["acquired_at"], r.details["lock"]["released_at"])  # type: ignore[attr-defined]
                    for r in (a, b)])
    assert spans[0][1] <= spans[1][0], spans


def test_read_only_and_dry_runs_take_no_lock(engine: Engine) -> None:
    with engine.store.lock("target:" + _identity(engine), 30, {"run_id": "x"}):
        stats = engine.run(engine.resolve(["stats"])).results[0]
        dry = engine.run(engine.resolve(["nap-same"]), dry_run=True).results[0]
    assert stats.status is RunStatus.COMPLETED and "lock" not in stats.details
    assert dry.status is RunStatus.COMPLETED and dry.dry_run


def _identity(engine: Engine) -> str:
    from wellkept.connectors.sqlite import SQLiteConnector

    return SQLiteConnector("app", engine.settings.targets["app"]).identity()


def test_resolve_rejects_unknown_names_before_running(engine: Engine) -> None:
    with pytest.raises(UsageError, match=r"unknown task 'nope'.*fine"):
        engine.resolve(["fine", "nope"])
    with pytest.raises(UsageError, match="say which target with --target"):
        engine.resolve(["vacuum"])
    with pytest.raises(UsageError, match="unknown target 'zz'"):
        engine.resolve(["vacuum"], target="zz")
    with pytest.raises(UsageError, match="required parameters"):
        engine.resolve(["cleanup"], target="app")
    assert engine.store.list_runs() == []


def test_builtin_kind_runs_directly_against_a_target(engine: Engine) -> None:
    (record,) = engine.run(engine.resolve(["stats"], target="app")).results
    assert record.kind == "stats" and record.target == "app"
    assert record.status is RunStatus.COMPLETED


def test_unrecordable_run_fails_cleanly(tmp_path: Path, engine: Engine) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    engine.store = HistoryStore(f"sqlite:///{blocker}/state.db")
    (record,) = engine.run(engine.resolve(["fine"])).results
    assert record.status is RunStatus.FAILED
    assert "state folder" in record.message


def test_the_engines_driver_is_imported_before_the_runs_record_starts(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A process's first run on an engine must not count importing the driver (0.1-0.2 s for
    psycopg) as its own time; a driver that cannot be imported is left to the run to report."""
    import sys

    from wellkept.connectors.sqlite import SQLiteConnector

    (tmp_path / "wk_sample_driver.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wk_sample_driver", raising=False)
    monkeypatch.setattr(SQLiteConnector, "driver", "wk_sample_driver")
    seen: list[bool] = []
    start_run = HistoryStore.start_run

    def spy(self: HistoryStore, *args: object, **kwargs: object) -> None:
        seen.append("wk_sample_driver" in sys.modules)
        start_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(HistoryStore, "start_run", spy)
    assert str(engine.run(engine.resolve(["fine"])).status) == "completed"
    assert seen == [True]
    monkeypatch.setattr(SQLiteConnector, "driver", "wk_no_such_driver")
    assert str(engine.run(engine.resolve(["fine"])).status) == "completed"
