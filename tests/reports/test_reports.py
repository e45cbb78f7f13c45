"""Reports built from a history with known figures: success rates, trends against the previous
period, freed space, failures, backups and RPO, resources, advice, schedules; the three formats;
the HTML printed by Chromium; `wellkept report` end to end."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from wellkept.config import load_config
from wellkept.engine import Engine
from wellkept.history.schema import schedule_slots
from wellkept.records import RunRecord
from wellkept.reports import build_report, render
from wellkept.types import RunStatus, Trigger

END = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
CONFIG = """\
timezone: Europe/Berlin
targets:
  app: {url: "sqlite:///app.sqlite3"}
tasks:
  purge: {kind: cleanup, target: app, table: events, date_column: created_at, retention: 30d}
  app-backup: {kind: backup, target: app, destination: backups/, verify: checksum}
  app-fresh: {kind: backup_freshness, target: app, rpo: 12h}
schedules:
  nightly: {cron: "0 2 * * *", tasks: [purge]}
"""


def put(engine: Engine, task: str, kind: str, at: datetime, seconds: float,
        status: RunStatus = RunStatus.COMPLETED, *, metrics: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None, errors: list[str] | None = None,
        dry_run: bool = False, target: str = "app", message: str = "") -> RunRecord:
    """Record one finished run as the engine would have."""
    record = RunRecord(run_id=str(uuid.uuid4()), task=task, kind=kind, target=target,
                       status=RunStatus.RUNNING, dry_run=dry_run, trigger=Trigger.SCHEDULE,
                       started_at=at)
    engine.store.start_run(record, {})
    done = RunRecord(**{**record.__dict__, "status": status,
                        "finished_at": at + timedelta(seconds=seconds),
                        "duration_seconds": seconds, "metrics": metrics or {},
                        "details": details or {}, "errors": errors or [],
                        "message": message or f"{task} {status}"})
    engine.store.finish_run(done)
    return done


def health(score: float, cpu: float) -> dict[str, Any]:
    return {"status": "healthy" if score > 80 else "degraded", "score": score,
            "targets": {"app": {"status": "up"}},
            "host": {"cpu_percent": cpu, "memory_percent": 40.0,
                     "disk": [{"path": "/", "percent": 50.0}]}}


@pytest.fixture
def engine(write_config: Callable[[str], Path], app_db: Path) -> Engine:
    """A history: a day (to END) and the day before, with known runs."""
    eng = Engine(load_config(write_config(CONFIG)))
    day = END - timedelta(days=1)
    before = day - timedelta(days=1)
    for i, seconds in enumerate((2.0, 4.0, 6.0)):            # mean 4 s now
        put(eng, "purge", "cleanup", day + timedelta(hours=i + 1), seconds,
            metrics={"rows_deleted": 100, "bytes_freed": 1000})
    for i, seconds in enumerate((1.0, 3.0)):                 # mean 2 s the day before
        put(eng, "purge", "cleanup", before + timedelta(hours=i + 1), seconds,
            metrics={"rows_deleted": 50})
    put(eng, "purge", "cleanup", day + timedelta(hours=5), 1.0, RunStatus.FAILED,
        errors=["database is locked", "Traceback: …"], message="purge on app failed: locked")
    put(eng, "purge", "cleanup", day + timedelta(hours=6), 0.0, RunStatus.SKIPPED)
    put(eng, "purge", "cleanup", day + timedelta(hours=7), 3.0, dry_run=True,
        metrics={"rows_matched": 77})
    put(eng, "purge", "cleanup", END + timedelta(minutes=1), 9.0)   # after the period
    for hours, score, cpu in ((2, 90.0, 20.0), (8, 70.0, 60.0)):
        put(eng, "health", "health", day + timedelta(hours=hours), 0.2, target="host",
            details=health(score, cpu), metrics={"score": score})
    put(eng, "health", "health", before + timedelta(hours=3), 0.2, target="host",
        details=health(100.0, 10.0), metrics={"score": 100.0})
    for at, size in ((before + timedelta(hours=1), 800), (before + timedelta(hours=20), 1000),
                     (day + timedelta(hours=1), 1000), (day + timedelta(hours=20), 1500)):
        put(eng, "app-stats", "stats", at, 0.1, metrics={"size_bytes": size})
    put(eng, "advise", "advise", day + timedelta(hours=3), 0.5, details={"advice": [
        {"id": "vacuum:public.events", "severity": "warning", "object": "public.events",
         "reason": "42% dead tuples", "statement": "VACUUM (ANALYZE) public.events",
         "applicable": True}]}, message="1 recommendation: 1 warning")
    with eng.store.engine.begin() as conn:
        conn.execute(schedule_slots.insert(), [
            {"schedule": "nightly", "slot_at": day + timedelta(hours=1), "outcome": "ran",
             "cause": None, "recorded_at": day, "covers": 1, "detail": "", "run_ids": []},
            {"schedule": "nightly", "slot_at": day + timedelta(hours=2), "outcome": "missed",
             "cause": "down", "recorded_at": day, "covers": 3, "detail": "", "run_ids": []}])
    return eng


def test_the_daily_report_has_every_figure_against_the_day_before(engine: Engine) -> None:
    report = build_report(engine, "daily", end=END).to_json()
    s = report["summary"]
    # now: purge 3 completed + 1 failed + 1 skipped, 2 health, 2 stats, 1 advise (dry run apart)
    assert (s["runs"], s["failures"], s["dry_runs"]) == (10, 1, 1)
    assert s["by_status"]["completed"] == 8 and s["by_status"]["skipped"] == 1
    assert s["success_rate"] == round(100 * 8 / 9, 1)
    assert s["previous_runs"] == 5 and s["previous_success_rate"] == 100.0
    purge = {t["task"]: t for t in report["tasks"]}["purge"]
    assert (purge["runs"], purge["completed"], purge["failed"], purge["skipped"]) == (5, 3, 1, 1)
    assert purge["duration_mean_seconds"] == pytest.approx((2 + 4 + 6 + 1) / 4)
    assert purge["previous_duration_mean_seconds"] == 2.0
    assert purge["duration_trend_percent"] == pytest.approx(62.5)
    assert purge["success_rate"] == 75.0
    assert report["freed"]["current"]["rows_deleted"] == 300
    assert report["freed"]["current"]["bytes_freed"] == 3000
    assert report["freed"]["previous"]["rows_deleted"] == 100
    (failure,) = report["failures"]
    assert failure["status"] == "failed" and failure["errors"][0] == "database is locked"
    assert failure["message"] == "purge on app failed: locked"
    res = report["resources"]
    assert res["health_score"]["mean"] == 80.0 and res["health_score"]["min"] == 70.0
    assert res["health_score"]["previous_mean"] == 100.0
    assert res["health_score"]["trend_percent"] == -20.0
    assert res["cpu_percent"]["max"] == 60.0 and res["health_checks"] == 2
    (db,) = res["databases"]
    assert (db["first_bytes"], db["last_bytes"], db["growth_bytes"]) == (1000, 1500, 500)
    assert db["previous_growth_bytes"] == 200 and db["growth_trend_percent"] == 150.0
    (advice,) = report["advice"]
    assert advice["recommendations"][0]["statement"] == "VACUUM (ANALYZE) public.events"
    (nightly,) = report["schedules"]
    assert (nightly["ran"], nightly["missed"], nightly["causes"]) == (1, 3, {"down": 3})
    charts = report["charts"]
    assert [p[1] for p in charts["health_score"]["health score"]] == [90.0, 70.0]
    assert [p[1] for p in charts["database_size_bytes"]["app"]] == [1000, 1500]
    assert sum(d["rows_deleted"] for d in charts["freed_per_day"]) == 300
    assert len(report["runs"]) == 10


def test_backups_report_the_recovery_point_against_the_tasks_rpo(engine: Engine) -> None:
    empty = build_report(engine, "daily").to_json()["backups"]
    assert empty[0]["target"] == "app" and empty[0]["fresh"] is False
    assert "no backup of app in the catalog" in empty[0]["reason"]
    batch = engine.run(engine.resolve(["app-backup"]))
    assert batch.results[0].status is RunStatus.COMPLETED, batch.results[0].message
    (backup,) = build_report(engine, "daily").to_json()["backups"]
    assert backup["fresh"] is True and backup["rpo_seconds"] == 12 * 3600
    assert backup["newest"]["verify_status"] == "passed"
    assert backup["made_in_period"] == 1 and backup["verified_in_period"] == 1
    assert 0 <= backup["recovery_point_age_seconds"] < 600


def test_csv_has_one_row_per_run_and_json_is_the_model(engine: Engine) -> None:
    report = build_report(engine, "daily", end=END)
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert len(rows) == len(report.runs) == 10
    assert [r["run_id"] for r in rows] == [r.run_id for r in report.runs]
    purge = [r for r in rows if r["task"] == "purge" and r["status"] == "completed"]
    assert [r["rows_deleted"] for r in purge] == ["100", "100", "100"]
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["errors"] == "database is locked | Traceback: …"
    assert json.loads(render(report, "json")) == json.loads(json.dumps(report.to_json()))
    weekly = build_report(engine, "weekly", end=END, include_details=False).to_json()
    assert weekly["summary"]["runs"] == 15 and "runs" not in weekly


def test_the_html_report_has_the_charts_and_prints(engine: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.api.test_dashboard_browser import ARGS, CHROMIUM

    html = render(build_report(engine, "daily", end=END), "html")
    for heading in ("Summary", "Tasks", "Failures", "Backups and recovery point", "Resources",
                    "Charts", "Schedules", "Recommendations", "Runs"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count('<svg class="wk-chart"') == 5 and "@media print" in html
    assert "purge on app failed: locked" in html and "▲ +62.5%" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    page_file = tmp_path / "report.html"
    page_file.write_text(html, encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.emulate_media(media="print")
            page.pdf(path=str(tmp_path / "report.pdf"), format="A4")
            page.screenshot(path=str(tmp_path / "report-print.png"), full_page=True)
            widest = page.evaluate("Math.max(...[...document.querySelectorAll('table, svg')]"
                                   ".map(e => e.getBoundingClientRect().right))")
            width = page.evaluate("document.documentElement.clientWidth")
        finally:
            browser.close()
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
    assert widest <= width + 1                         # nothing runs off the printed page


def test_wellkept_report_writes_each_format(engine: Engine, tmp_path: Path) -> None:
    cfg = str(engine.settings.source)
    out = tmp_path / "reports" / "day.csv"
    proc = run_cli("-c", cfg, "report", "--type", "daily", "--format", "csv", "--out", str(out),
                   "--end", "2026-11-22T06:00:00Z")
    assert proc.returncode == 0, proc.stderr
    assert "wrote the daily report (csv, 10 runs)" in proc.stderr
    assert len(out.read_text().splitlines()) == 11
    shown = run_cli("-c", cfg, "report", "-t", "weekly", "-f", "json", "--end",
                    "2026-11-22T07:00:00+01:00", "--no-details")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["period"] == {"start": "2026-11-15T06:00:00.000Z",
                             "end": "2026-11-22T06:00:00.000Z"}
    assert doc["timezone"] == "Europe/Berlin" and "runs" not in doc
    page = run_cli("-c", cfg, "report")
    assert page.returncode == 0 and page.stdout.startswith("<!doctype html>")
    for args, says in ((["--format", "pdf"], "--format: 'pdf' is not allowed"),
                       (["--type", "monthly"], "--type: 'monthly' is not allowed"),
                       (["--end", "yesterday"], "--end: 'yesterday' is not an ISO 8601")):
        bad = run_cli("-c", cfg, "report", *args)
        assert bad.returncode == 2 and says in bad.stderr, bad.stderr


def test_the_durations_chart_keeps_the_tasks_with_the_most_time() -> None:
    """Nine frequent quick tasks and one rare slow one: the slow one is drawn, and the
    title says that lines were left out."""
    from datetime import UTC, datetime, timedelta

    from wellkept.history.periods import RunRow
    from wellkept.reports.charts import MAX_LINES, duration_series
    from wellkept.reports.model import Charts
    from wellkept.reports.svg import dashboard_charts

    start = datetime(2026, 12, 1, tzinfo=UTC)

    def row(task: str, n: int, seconds: float) -> RunRow:
        at = start + timedelta(minutes=n)
        return RunRow(f"{task}-{n}", task, "stats", "app", "completed", "schedule", False,
                      at, at + timedelta(seconds=seconds), seconds, "")

    rows = [row(f"quick-{i}", n, 0.5) for i in range(9) for n in range(20)]
    rows += [row("slow-purge", 0, 120.0)]
    lines, tasks = duration_series(rows)
    assert tasks == 10 and len(lines) == MAX_LINES == 8
    assert "slow-purge" in [s.name for s in lines]
    svg = dashboard_charts(Charts(durations=lines, duration_tasks=tasks))["durations"]
    assert "the 8 of 10 tasks with the most time" in svg
