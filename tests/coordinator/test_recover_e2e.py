"""`wellkept recover` after a `wellkept run` was killed: the three strategies (resume,
restart, validate), the dry run, the attempt cap (dead), and a stale worker fenced off."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.coordinator.helpers import ledger, store_of, write
from tests.helpers import run_cli, wait_for, wellkept_bin
from wellkept.history import recovery_log
from wellkept.types import RunStatus


def killed_run(cfg: Path, task: str, folder: Path, *, until: int) -> None:
    """Start `wellkept run TASK`; kill -9 it once the ledger holds `until` items."""
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", task],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: len(ledger(folder)) >= until or proc.poll() is not None, 60)
    proc.kill()
    proc.wait(10)


def test_recover_resumes_and_the_dry_run_changes_nothing(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, "tasks: {job: {kind: steps, items: 50, every: 5, pause: 0.05}}\n")
    killed_run(cfg, "job", plugin_dir, until=33)
    store = store_of(cfg)
    (run,) = store.list_runs(task="job")
    assert run.status is RunStatus.RUNNING

    dry = run_cli("-c", str(cfg), "recover", "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert [f["run_id"] for f in plan["found"]] == [run.run_id]
    assert plan["recovered"][0]["strategy"] == "resume"
    assert "resuming from checkpoint 'items'" in plan["recovered"][0]["strategy_reason"]
    assert store.get_run(run.run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
    assert recovery_log.queue(store) == [] and len(store.list_runs(task="job")) == 1

    real = run_cli("-c", str(cfg), "recover", "-o", "json")
    assert real.returncode == 0, real.stderr
    (item,) = json.loads(real.stdout)["recovered"]
    assert item["strategy"] == "resume" and item["recovery"]["status"] == "completed"
    assert item["recovery"]["trigger"] == "recovery"
    assert set(Counter(r[0] for r in ledger(plugin_dir))) == set(range(50))
    again = run_cli("-c", str(cfg), "recover")
    assert again.returncode == 0 and "nothing to recover" in again.stdout


def test_too_little_progress_restarts(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, "tasks: {job: {kind: steps, items: 100, every: 10, pause: 0.05}}\n")
    killed_run(cfg, "job", plugin_dir, until=15)          # checkpoint at 10%: below 25%
    result = run_cli("-c", str(cfg), "recover", "-o", "json")
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)["recovered"]
    assert item["strategy"] == "restart" and "is not above 25%" in item["strategy_reason"]
    recovery = item["recovery"]
    assert recovery["status"] == "completed" and recovery["metrics"]["started_at_item"] == 0


def test_a_nearly_done_run_is_only_validated(plugin_dir: Path) -> None:
    flag = plugin_dir / "die"
    flag.touch()
    cfg = write(plugin_dir, "tasks: {job: {kind: steps, items: 40, every: 20, pause: 0.02,"
                            " die_at: 39, die_flag: die}}\n")
    killed_run(cfg, "job", plugin_dir, until=41)          # it kills itself at the last item
    flag.unlink()
    done = len(ledger(plugin_dir))
    result = run_cli("-c", str(cfg), "recover", "-o", "json")
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)["recovered"]
    assert item["strategy"] == "validate"
    assert item["recovery"]["message"].startswith("validated: the interrupted run")
    assert len(ledger(plugin_dir)) == done                # nothing was done again


def test_a_failed_validation_falls_back_to_resume(plugin_dir: Path) -> None:
    flag = plugin_dir / "die"
    flag.touch()
    cfg = write(plugin_dir, "tasks: {job: {kind: steps, items: 100, every: 10, pause: 0.01,"
                            " die_at: 97, die_flag: die}}\n")
    killed_run(cfg, "job", plugin_dir, until=999)         # 97%: above validate_above
    flag.unlink()
    result = run_cli("-c", str(cfg), "recover", "-o", "json")
    (item,) = json.loads(result.stdout)["recovered"]
    assert item["strategy"] == "resume", item
    assert "validation found work left" in item["strategy_reason"]
    assert item["recovery"]["metrics"]["started_at_item"] == 90
    assert set(r[0] for r in ledger(plugin_dir)) == set(range(100))


def test_past_the_attempt_cap_a_run_ends_dead(plugin_dir: Path) -> None:
    (plugin_dir / "die").touch()                           # it dies at item 12, every time
    cfg = write(plugin_dir, """\
        recovery: {lease: 3s, max_attempts: 1}
        tasks: {job: {kind: steps, items: 30, every: 5, pause: 0.02, die_at: 12, die_flag: die}}
        """)
    killed_run(cfg, "job", plugin_dir, until=999)
    store = store_of(cfg)
    first = run_cli("-c", str(cfg), "recover")              # the recovery dies too
    assert first.returncode == -9
    last = run_cli("-c", str(cfg), "recover", "-o", "json")
    assert last.returncode == 1, last.stderr
    body = json.loads(last.stdout)
    assert [f["status"] for f in body["found"]] == ["dead"] and body["recovered"] == []
    runs = sorted(store.list_runs(task="job"), key=lambda r: r.started_at)
    assert [r.status for r in runs] == [RunStatus.ORPHANED, RunStatus.DEAD]
    assert runs[1].attempt == 2 and "max_attempts is 1" in runs[1].message
    strategies = [a["strategy"] for a in reversed(recovery_log.attempts(store))]
    assert strategies == ["resume", "dead"]
    assert recovery_log.queue(store) == []


def test_a_stale_worker_stops_and_cannot_overwrite_its_recovery(plugin_dir: Path) -> None:
    """Another process presumed the run dead and closed it: the worker's lease renewal and
    its next checkpoint are refused, and it stops within one checkpoint interval."""
    from wellkept.config import load_config
    from wellkept.engine import Engine

    cfg = write(plugin_dir, "tasks: {job: {kind: steps, items: 400, every: 5, pause: 0.02}}\n")
    engine = Engine(load_config(cfg))
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.setdefault(
        "record", engine.run_one(engine.resolve(["job"])[0])))
    worker.start()
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 20, 30)
    (state,) = recovery_log.running(engine.store)
    import datetime as dt

    assert recovery_log.close_interrupted(engine.store, state, dt.datetime.now(dt.UTC),
                                          RunStatus.ORPHANED, "orphaned: presumed dead")
    at_takeover = len(ledger(plugin_dir))
    worker.join(30)
    assert not worker.is_alive()
    assert len(ledger(plugin_dir)) - at_takeover <= 5          # stopped at its next checkpoint
    row = engine.store.get_run(state.run_id)
    assert row is not None and row.status is RunStatus.ORPHANED  # not overwritten
    point = engine.store.latest_checkpoint(state.run_id)
    assert point is not None and point["data"]["next"] <= at_takeover
    record = box["record"]
    assert "no longer owns run" in record.message  # type: ignore[attr-defined]


@pytest.mark.parametrize("stage", ["stored", "verified"])
def test_an_interrupted_backup_is_recovered_without_dumping_again(
        plugin_dir: Path, app_db: Path, stage: str) -> None:
    """A backup killed after storing (or after verifying) its artifact: recovery verifies
    (or only validates) that backup; it takes no second dump."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from wellkept.backups import catalog
    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.records import RunRecord
    from wellkept.recovery import Recoverer
    from wellkept.types import Trigger

    assert app_db.parent == plugin_dir  # both are the test's folder
    cfg = write(plugin_dir, """\
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        tasks: {bk: {kind: backup, target: app, destination: backups/, verify: readable}}
        """)
    engine = Engine(load_config(cfg))
    (done,) = engine.run(engine.resolve(["bk"])).results
    backup_id = done.details["backup_id"]
    # what a backup killed at that stage leaves: a running row, a dead lease, its checkpoint
    now = datetime.now(UTC)
    killed = RunRecord(run_id=str(uuid.uuid4()), task="bk", kind="backup", target="app",
                       status=RunStatus.RUNNING, dry_run=False, trigger=Trigger.SCHEDULE,
                       started_at=now - timedelta(minutes=5), pid=999_999_999)
    engine.store.start_run(killed, engine.settings.tasks["bk"].params.model_dump(mode="json"),
                           lease_until=now - timedelta(minutes=1))
    percent = {"stored": 90.0, "verified": 97.0}[stage]
    engine.store.add_checkpoint(killed.run_id, 1, stage, percent, {"backup_id": backup_id})
    report = Recoverer(engine).run()
    (item,) = report.recovered
    recovery = item.recovery
    assert recovery is not None and recovery.status is RunStatus.COMPLETED, recovery
    assert len(catalog.entries(engine.store, "app")) == 1        # no second backup
    if stage == "stored":
        assert item.strategy == "resume" and recovery.details["resumed_backup"] == backup_id
        assert recovery.details["verification"]["passed"] is True
    else:
        assert item.strategy == "validate" and recovery.message.startswith("validated")
    assert engine.store.get_run(killed.run_id).status is RunStatus.ORPHANED  # type: ignore[union-attr]


def test_a_recovery_that_cannot_start_is_deferred_then_done(plugin_dir: Path) -> None:
    from tests.helpers import make_app_db, sql
    from wellkept.config import load_config
    from wellkept.connectors.sqlite import SQLiteConnector

    db = make_app_db(plugin_dir / "app.sqlite3", old=2000, fresh=10)
    cfg = write(plugin_dir, """\
        recovery: {lease: 3s, backoff: 1s}
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        tasks:
          purge: {kind: cleanup, target: app, table: events, date_column: created_at,
                  retention: 30d, batch_size: 10, target_batch_seconds: 0, sleep: 20ms,
                  lock_wait: 500ms}
        """)
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old = lambda: sql(db, "SELECT count(*) FROM events WHERE kind = 'old'")[0][0]  # noqa: E731
    assert wait_for(lambda: old() < 1900, 30)
    proc.kill()
    proc.wait(10)
    store = store_of(cfg)
    settings = load_config(cfg)
    identity = SQLiteConnector("app", settings.targets["app"]).identity()
    with store.lock(f"target:{identity}", 5, {"run_id": "someone-else", "task": "other"}):
        busy = run_cli("-c", str(cfg), "recover", "-o", "json")
    assert busy.returncode == 0, busy.stderr
    (item,) = json.loads(busy.stdout)["recovered"]
    assert item["recovery"]["status"] == "skipped" and "busy" in item["recovery"]["message"]
    (entry,) = recovery_log.queue(store)
    assert entry.claimed_by is None                     # handed back, to be tried again
    assert [a["strategy"] for a in recovery_log.attempts(store)] == ["deferred"]
    time.sleep(1.2)                                     # the backoff
    done = run_cli("-c", str(cfg), "recover", "-o", "json")
    (item,) = json.loads(done.stdout)["recovered"]
    assert item["strategy"] == "resume" and item["recovery"]["status"] == "completed"
    assert old() == 0 and recovery_log.queue(store) == []
