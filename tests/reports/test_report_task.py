"""The `report` task: mailed through a real SMTP server and posted to a real webhook, fired by
the coordinator's schedule, partial when a channel is down, silent on a dry run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import free_port, run_cli
from tests.servers import http_capture, smtp_capture
from wellkept.clock import ManualClock
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine

CONFIG = """\
targets:
  app: {{url: "sqlite:///{db}"}}
alerts:
  channels: [{channels}]
tasks:
  purge: {{kind: cleanup, target: app, table: events, date_column: created_at,
          retention: 30d}}
  mail-report: {{kind: report, type: daily, attach: [csv, json], save_to: reports/}}
schedules:
  morning: {{cron: "0 6 * * *", tasks: [mail-report]}}
"""


def test_the_report_is_mailed_with_html_and_attachments_and_posted_to_the_webhook(
        write_config: Callable[[str], Path], app_db: Path, tmp_path: Path) -> None:
    with smtp_capture() as (smtp_port, mails), http_capture() as hooks:
        cfg = write_config(CONFIG.format(db=app_db, channels=(
            f'"smtp://127.0.0.1:{smtp_port}/?to=dba@example.com&from=wellkept@example.com", '
            f'"json://127.0.0.1:{hooks.port}/hook"')))
        assert run_cli("-c", str(cfg), "run", "purge").returncode == 0
        dry = run_cli("-c", str(cfg), "run", "mail-report", "--dry-run", "-o", "json")
        assert dry.returncode == 0, dry.stderr
        assert "would send" in json.loads(dry.stdout)["results"][0]["message"]
        assert mails == [] and len(hooks) == 0 and not (tmp_path / "reports").exists()
        proc = run_cli("-c", str(cfg), "run", "mail-report", "-o", "json")
        assert proc.returncode == 0, proc.stderr
        (run,) = json.loads(proc.stdout)["results"]
    assert run["status"] == "completed", run
    assert run["metrics"]["channels_delivered"] == 2 and run["metrics"]["runs_reported"] == 2
    (mail,) = mails
    msg = mail["msg"]
    assert mail["to"] == ["dba@example.com"]
    assert msg["Subject"] == "[wellkept] daily report: 2 runs, success 100%, 0 failures"
    text = msg.get_body(("plain",)).get_content()
    assert "rows deleted: 3,000" in text
    html = msg.get_body(("html",)).get_content()
    assert "<h2>Failures</h2>" in html and html.count('<svg class="wk-chart"') == 5
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert sorted(files) == [n for n in sorted(files) if n.startswith("wellkept-daily-")]
    rows = list(csv.DictReader(io.StringIO(next(v for k, v in files.items()
                                                 if k.endswith(".csv")))))
    assert [r["task"] for r in rows] == ["purge", "mail-report"]   # the dry run is left out
    assert rows[0]["rows_deleted"] == "3000"
    (hook,) = hooks
    posted = json.loads(hook["body"])
    assert posted["title"] == msg["Subject"]
    assert posted["report"]["summary"]["runs"] == 2
    assert posted["report"]["freed"]["current"]["rows_deleted"] == 3000
    saved = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert len(saved) == 3 and all(n.startswith("wellkept-daily-") for n in saved)


def test_a_channel_that_is_down_makes_the_run_partial_and_is_named(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    down = free_port()
    with smtp_capture() as (smtp_port, mails):
        cfg = write_config(CONFIG.format(db=app_db, channels=(
            f'"smtp://127.0.0.1:{smtp_port}/?to=dba@example.com", '
            f'"json://127.0.0.1:{down}/hook"')).replace(", save_to: reports/", ""))
        proc = run_cli("-c", str(cfg), "run", "mail-report", "-o", "json")
    assert proc.returncode == 1
    (run,) = json.loads(proc.stdout)["results"]
    assert run["status"] == "partial_failure"
    assert run["metrics"] == {**run["metrics"], "channels_delivered": 1, "channels_failed": 1}
    assert any(f"json://127.0.0.1:{down}/hook" in e for e in run["errors"]), run["errors"]
    # the report, and the alert that the run (a partial failure) raises like any other
    subjects = sorted(m["msg"]["Subject"] for m in mails)
    assert len(subjects) == 2 and subjects[1].startswith("[wellkept] daily report")
    assert "task_failure on host mail-report" in subjects[0], subjects


def test_no_channel_fails_and_says_so(write_config: Callable[[str], Path],
                                      app_db: Path) -> None:
    cfg = write_config(CONFIG.format(db=app_db, channels="").replace(
        ", save_to: reports/", ""))
    proc = run_cli("-c", str(cfg), "run", "mail-report", "-o", "json")
    assert proc.returncode == 1
    assert "no channel to send the report to" in json.loads(proc.stdout)["results"][0][
        "message"]


def test_the_coordinator_mails_the_report_at_its_scheduled_time(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    with smtp_capture() as (smtp_port, mails):
        cfg = write_config(CONFIG.format(db=app_db, channels=(
            f'"smtp://127.0.0.1:{smtp_port}/?to=dba@example.com"')))
        clock = ManualClock(datetime(2026, 11, 22, 5, 59, tzinfo=UTC))
        coordinator = Coordinator(Engine(load_config(cfg)), clock=clock)
        try:
            coordinator.tick()                                   # before 06:00: nothing
            assert coordinator.pool.wait_idle(30) and mails == []
            clock.set(clock.now() + timedelta(minutes=1, seconds=5))
            coordinator.tick()
            assert coordinator.pool.wait_idle(60)
        finally:
            coordinator.shutdown()
    (mail,) = mails
    assert mail["msg"]["Subject"].startswith("[wellkept] daily report")
    (run,) = coordinator.store.list_runs(task="mail-report")
    assert (str(run.trigger), str(run.status), run.schedule) == \
        ("schedule", "completed", "morning")
