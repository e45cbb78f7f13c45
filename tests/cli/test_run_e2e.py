"""End to end: the installed `wellkept` command against a real SQLite file, checked in the file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import make_app_db, run_cli, wellkept_bin

CONFIG = """\
targets:
  app: {url: "sqlite:///app.sqlite3"}
tasks:
  purge-events:
    kind: cleanup
    target: app
    table: events
    date_column: created_at
    retention: 30d
    batch_size: 500
    target_batch_seconds: 0
  app-vacuum: {kind: vacuum, target: app}
  app-stats: {kind: stats, target: app}
  broken: {kind: cleanup, target: app, table: no_such_table, date_column: x, retention: 1d}
schedules:
  nightly: {cron: "@daily", tasks: [purge-events, app-vacuum]}
"""
RUN_KEYS = {"run_id", "task", "kind", "target", "status", "dry_run", "trigger", "started_at",
            "finished_at", "duration_seconds", "message", "metrics", "details", "errors"}


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    finally:
        conn.close()


def test_cleanup_and_vacuum_change_the_file(write_config: Callable[..., Path],
                                            tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=3000, fresh=1000, padding=400)
    cfg = write_config(CONFIG)
    size_before = db.stat().st_size

    proc = run_cli("--config", str(cfg), "run", "--schedule", "nightly", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"results", "summary", "metadata"}
    assert out["summary"] == {"status": "completed", "completed": 2, "partial_failure": 0,
                              "failed": 0, "skipped": 0, "errors": [],
                              "targets": {"app": {"available": True, "status": "up",
                                                  "errors": []}}}
    assert set(out["metadata"]) >= {"started_at", "duration_seconds", "dry_run", "version"}
    purge, vacuum = out["results"]
    assert set(purge) == RUN_KEYS
    assert purge["started_at"].endswith("Z") and purge["trigger"] == "manual"
    assert purge["metrics"] == {"rows_matched": 3000, "rows_deleted": 3000, "rows_archived": 0,
                                "batches": 6}
    assert vacuum["metrics"]["bytes_freed"] > 0

    assert counts(db) == {"fresh": 1000}  # expired rows gone, fresh rows untouched
    size_after = db.stat().st_size
    assert size_after < size_before * 0.5
    assert vacuum["metrics"]["bytes_freed"] == size_before - size_after

    hist = run_cli("--config", str(cfg), "history", "--output", "json")
    assert hist.returncode == 0, hist.stderr
    runs = json.loads(hist.stdout)
    assert [r["task"] for r in runs] == ["app-vacuum", "purge-events"]
    assert runs[1] == purge


def test_dry_run_changes_nothing_and_is_recorded(write_config: Callable[..., Path],
                                                 app_db: Path) -> None:
    cfg = write_config(CONFIG)
    before = app_db.read_bytes()
    proc = run_cli("-c", str(cfg), "run", "purge-events", "app-vacuum", "--dry-run", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    purge, vacuum = json.loads(proc.stdout)["results"]
    assert purge["dry_run"] is True and vacuum["dry_run"] is True
    assert purge["metrics"] == {"rows_matched": 3000, "rows_deleted": 0, "rows_archived": 0,
                                "batches": 0}
    assert purge["details"]["expected_batches"] == 6
    assert "would delete 3000 rows" in purge["message"]
    assert app_db.read_bytes() == before
    hist = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    assert all(r["dry_run"] for r in hist) and len(hist) == 2


def test_failures_set_exit_code_and_partial_status(write_config: Callable[..., Path],
                                                   app_db: Path) -> None:
    cfg = write_config(CONFIG)
    proc = run_cli("-c", str(cfg), "run", "broken", "app-stats", "-o", "json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["summary"]["status"] == "partial_failure"
    broken = out["results"][0]
    assert broken["status"] == "failed"
    assert "no_such_table" in broken["message"] and "events" in broken["message"]
    text = run_cli("-c", str(cfg), "run", "broken")
    assert text.returncode == 1 and "failed" in text.stdout


def test_usage_errors_exit_2_and_run_nothing(write_config: Callable[..., Path],
                                             app_db: Path, tmp_path: Path) -> None:
    cfg = write_config(CONFIG)
    for args in (["run", "purge-evnts"], ["run"], ["run", "vacuum"],
                 ["run", "--schedule", "weekly"], ["history", "--status", "bogus"],
                 ["run", "app-stats", "-o", "yaml"]):
        proc = run_cli("-c", str(cfg), *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip(), args
    assert "configured tasks and kinds" in run_cli("-c", str(cfg), "run", "x").stderr
    assert not (tmp_path / ".wellkept" / "state.db").exists() or \
        json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout) == []


def test_builtin_kind_with_target_and_history_filters(write_config: Callable[..., Path],
                                                      app_db: Path) -> None:
    cfg = write_config(CONFIG)
    assert run_cli("-c", str(cfg), "run", "stats", "--target", "app").returncode == 0
    assert run_cli("-c", str(cfg), "run", "broken").returncode == 1
    assert run_cli("-c", str(cfg), "run", "integrity", "-t", "app").returncode == 0
    hist = lambda *a: json.loads(run_cli("-c", str(cfg), "history", "-o", "json", *a).stdout)  # noqa: E731
    assert [r["task"] for r in hist()] == ["integrity", "broken", "stats"]
    assert [r["task"] for r in hist("--status", "failed")] == ["broken"]
    assert [r["task"] for r in hist("--task", "stats")] == ["stats"]
    assert len(hist("--limit", "1")) == 1
    text = run_cli("-c", str(cfg), "history", "--status", "failed")
    assert "broken" in text.stdout and "stats" not in text.stdout


def test_config_from_environment_variable(write_config: Callable[..., Path],
                                          app_db: Path, tmp_path: Path) -> None:
    cfg = write_config(CONFIG)
    proc = run_cli("run", "app-stats", cwd=tmp_path.parent,
                   env={"WELLKEPT_CONFIG": str(cfg)})
    assert proc.returncode == 0, proc.stderr
    missing = run_cli("history", cwd=tmp_path)  # ./wellkept.yml exists there
    assert missing.returncode == 0
    nowhere = run_cli("history", cwd=tmp_path.parent)
    assert nowhere.returncode == 2 and "wellkept init" in nowhere.stderr


def test_two_concurrent_cleanups_on_one_target_do_not_overlap(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=400, fresh=100)
    cfg = write_config(CONFIG.replace("batch_size: 500", "batch_size: 10\n    sleep: 20ms"))
    env = {**os.environ, "COLUMNS": "200"}
    procs = [subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge-events", "-o",
                               "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(o[0])["results"][0] for o in outs]
    assert all(r["status"] == "completed" for r in results)
    spans = sorted((r["details"]["lock"]["acquired_at"], r["details"]["lock"]["released_at"])
                   for r in results)
    assert spans[0][1] <= spans[1][0], f"runs overlapped: {spans}"
    assert sorted(r["metrics"]["rows_deleted"] for r in results) == [0, 400], results
    assert counts(db) == {"fresh": 100}


def test_a_killed_run_releases_its_target(write_config: Callable[..., Path],
                                          tmp_path: Path) -> None:
    make_app_db(tmp_path / "app.sqlite3", old=2000, fresh=10)
    slow = CONFIG.replace("batch_size: 500", "batch_size: 1\n    sleep: 50ms")
    cfg = write_config(slow.replace("  app-vacuum:", "  purge-fast: {kind: cleanup, target: app,"
                                    " table: events, date_column: created_at, retention: 30d}\n"
                                    "  app-vacuum:"))
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge-events"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    proc.kill()  # SIGKILL mid-cleanup: no cleanup code runs, the lock must still be freed
    proc.wait()
    again = run_cli("-c", str(cfg), "run", "purge-fast", "-o", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["results"][0]["details"]["lock"]["waited_seconds"] < 1
    assert counts(tmp_path / "app.sqlite3") == {"fresh": 10}


#: how Ctrl-C and SIGTERM end a `wellkept run`: the signal, the exit code, the error line and
#: how the record names the interruption
STOPS = [pytest.param(signal.SIGINT, 130, "error: interrupted", "KeyboardInterrupt", id="ctrl-c"),
         pytest.param(signal.SIGTERM, 143, "error: terminated", "SIGTERM", id="sigterm")]


def _start_run(cfg: Path) -> subprocess.Popen[str]:
    # SIGINT back to its default: a suite started in the background would hand on SIG_IGN
    return subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge-events"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize(("signum", "code", "said", "why"), STOPS)
def test_ctrl_c_or_sigterm_records_what_was_done_and_the_next_run_resumes(
        write_config: Callable[..., Path], tmp_path: Path, signum: signal.Signals, code: int,
        said: str, why: str) -> None:
    """Typer turns a KeyboardInterrupt into a silent exit 130, and SIGTERM (systemd, timeout,
    Kubernetes) would kill the process at once; either way the user is told, the record keeps
    what the run committed before it stopped, and the next run resumes from there."""
    db = make_app_db(tmp_path / "app.sqlite3", old=2000, fresh=10)
    cfg = write_config(CONFIG.replace("batch_size: 500", "batch_size: 1\n    sleep: 50ms"))
    proc = _start_run(cfg)
    time.sleep(2)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == said, err
    done = 2000 - counts(db).get("old", 0)
    assert 0 < done < 2000
    history = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    stopped = history[0]
    assert stopped["status"] == "partial_failure", (stopped["message"], stopped["errors"])
    assert stopped["message"].startswith(f"interrupted ({why}): deleted "), stopped
    assert stopped["errors"][-1] == f"interrupted ({why})"
    assert stopped["metrics"]["rows_deleted"] == done
    assert stopped["details"]["incomplete"] is True

    write_config(CONFIG)  # at full pace now
    again = json.loads(run_cli("-c", str(cfg), "run", "purge-events", "-o", "json").stdout)
    record = again["results"][0]
    assert record["status"] == "completed", record
    assert record["details"]["resumed_from"]["run_id"] == stopped["run_id"]
    assert record["metrics"]["rows_deleted"] == 2000 - done
    assert counts(db) == {"fresh": 10}


@pytest.mark.parametrize(("signum", "code", "said", "why"), STOPS)
def test_ctrl_c_or_sigterm_before_any_batch_records_a_failed_run(
        write_config: Callable[..., Path], tmp_path: Path, signum: signal.Signals, code: int,
        said: str, why: str) -> None:
    """Interrupted before it committed anything, the run is failed, with nothing counted, and
    it says so in the task's own words (it stopped within the grace)."""
    db = make_app_db(tmp_path / "app.sqlite3", old=200, fresh=10)
    # a lock held elsewhere keeps the first batch waiting
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        cfg = write_config(CONFIG)
        proc = _start_run(cfg)
        time.sleep(2)
        proc.send_signal(signum)
        if signum == signal.SIGTERM:
            # a supervisor that sends it again must not cut short the grace or the record:
            # the run is still waiting for the lock (until lock_timeout) when it comes
            time.sleep(0.5)
            proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == said, err
    history = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    assert history[0]["status"] == "failed", history[0]
    assert history[0]["message"] == (f"interrupted ({why}): stopped before its first batch "
                                     "committed: nothing deleted from events; the rows older "
                                     "than 30d are left for the next run"), history[0]
    assert history[0]["metrics"].get("rows_deleted", 0) == 0
    assert counts(db) == {"old": 200, "fresh": 10}


def test_a_killed_cleanup_resumes_from_its_checkpoint(write_config: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    db = make_app_db(tmp_path / "app.sqlite3", old=3000, fresh=50)
    slow = CONFIG.replace("batch_size: 500", "batch_size: 10\n    sleep: 50ms")
    cfg = write_config(slow)
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge-events"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    proc.kill()  # SIGKILL between or inside batches: only committed batches count
    proc.wait()
    done_before = 3000 - counts(db).get("old", 0)
    assert 0 < done_before < 3000

    write_config(CONFIG)  # the operator tunes the pace and reruns: same rule, other batch size
    again = run_cli("-c", str(cfg), "run", "purge-events", "-o", "json")
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)["results"][0]
    resumed = record["details"]["resumed_from"]
    # the killed run was found still 'running' under the target lock: it is closed as
    # orphaned, and this run took its work over through recovery, resuming its checkpoint
    assert resumed["status"] == "orphaned" and resumed["name"] == "batch"
    assert record["details"]["recovery"]["strategy"] == "resume"
    assert record["details"]["recovery"]["of"] == resumed["run_id"]
    assert record["metrics"]["rows_deleted"] == 3000 - done_before
    assert counts(db) == {"fresh": 50}
    history = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    assert history[1]["run_id"] == resumed["run_id"]
    assert history[1]["status"] == "orphaned" and record["run_id"] in history[1]["message"]

    # a completed run is not resumed again
    third = json.loads(run_cli("-c", str(cfg), "run", "purge-events", "-o", "json").stdout)
    assert "resumed_from" not in third["results"][0]["details"]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".parquet"])
def test_kill_9_mid_file_archive_leaves_no_duplicate_and_no_gap(
        write_config: Callable[..., Path], tmp_path: Path, suffix: str) -> None:
    import gzip

    import duckdb

    db = make_app_db(tmp_path / "app.sqlite3", old=60000, fresh=100, padding=20)
    cfg = write_config(CONFIG.replace("""    batch_size: 500
    target_batch_seconds: 0""", """    batch_size: 500
    target_batch_seconds: 0
    sleep: 10ms
    mode: archive
    archive_to: "archive/{table}-{date}SUFFIX\"""").replace("SUFFIX", suffix))
    for attempt in range(3):  # kill it several times, at different points
        proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "purge-events"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0 + attempt * 0.37)
        proc.kill()
        proc.wait()
    final = run_cli("-c", str(cfg), "run", "purge-events", "-o", "json", timeout=300)
    assert final.returncode == 0, final.stderr
    history = json.loads(run_cli("-c", str(cfg), "history", "-o", "json").stdout)
    assert any("resumed_from" in h["details"] for h in history)  # at least one resumed
    (archive,) = (tmp_path / "archive").glob("*" + suffix)
    if suffix == ".parquet":
        ids = [r[0] for r in duckdb.sql(
            f"SELECT id FROM read_parquet('{archive}/*.parquet')").fetchall()]
    else:
        with gzip.open(archive, "rt") as fh:
            ids = [json.loads(line)["id"] for line in fh]
    assert len(ids) == len(set(ids)) == 60000  # no duplicate, no gap
    assert counts(db) == {"fresh": 100}
    assert sorted(ids) == list(range(1, 60001))


TWO_FILES = """\
targets:
  one: {url: "sqlite:///one.sqlite3"}
  two: {url: "sqlite:///two.sqlite3"}
tasks:
  purge-events:
    kind: cleanup
    targets: [one, two]
    table: events
    date_column: created_at
    retention: 30d
schedules:
  one-only: {cron: "@daily", tasks: [purge-events@one]}
  both: {cron: "@weekly", tasks: [purge-events]}
"""


def test_a_schedule_entry_name_at_target_runs_on_that_target_only(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """``purge-events@one`` in a schedule: the instance on ``one``, not on its other target;
    the bare name still runs on every target."""
    one = make_app_db(tmp_path / "one.sqlite3", old=300, fresh=100)
    two = make_app_db(tmp_path / "two.sqlite3", old=300, fresh=100)
    cfg = write_config(TWO_FILES)
    proc = run_cli("-c", str(cfg), "run", "--schedule", "one-only", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads(proc.stdout)["results"]
    assert (run["task"], run["target"]) == ("purge-events", "one")
    assert counts(one) == {"fresh": 100} and counts(two) == {"old": 300, "fresh": 100}
    one_target = run_cli("-c", str(cfg), "run", "purge-events@two", "-o", "json")
    assert one_target.returncode == 0, one_target.stderr
    assert [r["target"] for r in json.loads(one_target.stdout)["results"]] == ["two"]
    assert counts(two) == {"fresh": 100}
    wrong = run_cli("-c", str(cfg), "run", "purge-events@app")
    assert wrong.returncode == 2
    assert "task 'purge-events' does not run on 'app'; its targets: one, two" in wrong.stderr
    both = run_cli("-c", str(cfg), "run", "--schedule", "both", "-o", "json")
    assert [r["target"] for r in json.loads(both.stdout)["results"]] == ["one", "two"]
