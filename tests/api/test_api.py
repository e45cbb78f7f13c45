"""The API in process (create_app over a real SQLite app database): runs go through the engine
and change the database, auth, bad input, history pages, schedules, figures, health shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import TOKEN, auth, wait_finished
from tests.helpers import sql
from wellkept.history import schedules

CONTRACT_PATHS = {
    ("post", "/maintenance/tasks/{name}/run"), ("post", "/maintenance/run-all"),
    ("get", "/maintenance/status"), ("get", "/maintenance/history"),
    ("get", "/maintenance/runs/{run_id}"), ("post", "/maintenance/reports/generate"),
    ("get", "/maintenance/schedule"), ("post", "/maintenance/schedule/{schedule_id}/pause"),
    ("post", "/maintenance/schedule/{schedule_id}/resume"), ("post", "/maintenance/emergency"),
    ("get", "/maintenance/dashboard"), ("get", "/maintenance/metrics"),
    ("get", "/health/recovery"), ("get", "/health/recovery/metrics"),
    ("get", "/health/detailed"), ("get", "/metrics"),
}


def old_rows(db: Path) -> int:
    return int(sql(db, "SELECT count(*) FROM events WHERE kind = 'old'")[0][0])


def test_a_run_started_over_http_goes_through_the_engine_and_deletes_the_rows(
        client: Any, tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite3"
    assert old_rows(db) == 3000
    started = client.post("/maintenance/tasks/purge/run", headers=auth())
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["trigger"] == "api" and body["run_ids"] == [body["run_id"]]
    run = wait_finished(client.get, body["run_id"])
    assert (run["task"], run["kind"], run["target"], run["status"], run["trigger"]) == \
        ("purge", "cleanup", "app", "completed", "api")
    assert run["metrics"]["rows_deleted"] == 3000
    assert old_rows(db) == 0                                   # the database itself
    assert sql(db, "SELECT count(*) FROM events")[0][0] == 1000
    record = client.engine.store.get_run(body["run_id"])      # the same history as the CLI
    assert record is not None and str(record.trigger) == "api"
    history = client.get("/maintenance/history", params={"task": "purge"}).json()
    assert [r["run_id"] for r in history] == [body["run_id"]]


def test_dry_run_changes_nothing_and_a_kind_runs_on_a_named_target(
        client: Any, tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite3"
    dry = client.post("/maintenance/tasks/purge/run", headers=auth(), json={"dry_run": True})
    assert dry.status_code == 202 and dry.json()["dry_run"] is True
    run = wait_finished(client.get, dry.json()["run_id"])
    assert run["dry_run"] is True and run["metrics"]["rows_matched"] == 3000
    assert run["metrics"].get("rows_deleted", 0) == 0 and old_rows(db) == 3000
    kind = client.post("/maintenance/tasks/analyze/run", headers=auth(),
                       json={"target": "app"})
    assert kind.status_code == 202, kind.text
    analyzed = wait_finished(client.get, kind.json()["run_id"])
    assert (analyzed["kind"], analyzed["target"], analyzed["status"]) == \
        ("analyze", "app", "completed")


def test_a_queued_run_answers_202_queued_before_its_row_exists(client: Any) -> None:
    from wellkept.api.launcher import Queued

    launcher = client.app.state.wellkept.launcher
    with launcher._lock:  # as if a worker had not picked it up yet
        launcher._pending["11111111-2222-3333-4444-555555555555"] = Queued(
            "11111111-2222-3333-4444-555555555555", "purge", "app")
    answer = client.get("/maintenance/runs/11111111-2222-3333-4444-555555555555")
    assert answer.status_code == 202
    assert answer.json() == {"run_id": "11111111-2222-3333-4444-555555555555",
                             "status": "queued", "task": "purge", "target": "app"}


def test_run_all_and_emergency(client: Any) -> None:
    every = client.post("/maintenance/run-all", headers=auth())
    assert every.status_code == 202
    ids = every.json()["run_ids"]
    assert len(ids) == 3                                       # purge, app-stats, health-check
    runs = [wait_finished(client.get, i) for i in ids]
    assert [r["task"] for r in runs] == ["purge", "app-stats", "health-check"]
    assert all(r["trigger"] == "api" and r["status"] == "completed" for r in runs)
    urgent = client.post("/maintenance/emergency", params={"task_name": "app-stats"},
                         headers=auth())
    assert urgent.status_code == 202 and urgent.json()["trigger"] == "emergency"
    assert wait_finished(client.get, urgent.json()["run_id"])["trigger"] == "emergency"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/maintenance/tasks/purge/run", None),
    ("post", "/maintenance/run-all", None),
    ("post", "/maintenance/emergency?task_name=purge", None),
    ("post", "/maintenance/schedule/nightly/pause", None),
    ("post", "/maintenance/schedule/nightly/resume", None),
    ("post", "/maintenance/reports/generate", {"format_type": "json"}),
])
def test_every_post_needs_a_valid_bearer_token(client: Any, method: str, path: str,
                                               body: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer "}):
        answer = client.request(method, path, headers=headers, json=body)
        assert answer.status_code == 401, (headers, answer.text)
        assert "error" in answer.json() and "Bearer" in answer.headers["www-authenticate"]
    assert client.get("/maintenance/history").status_code == 200   # reads are open
    assert not client.engine.store.list_runs()                      # nothing ran


@pytest.mark.parametrize("body", ['{"dry_run": ', '{"dry_run": "yes"}', "[1]", b"\xff\xfe"])
def test_a_caller_without_a_token_learns_nothing_about_its_body(client: Any, body: Any) -> None:
    """The token is refused before the body is judged; with the token the body is."""
    path = "/maintenance/tasks/purge/run"
    typed = {"Content-Type": "application/json"}
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        answer = client.post(path, content=body, headers={**typed, **headers})
        assert answer.status_code == 401, (headers, answer.text)
        assert "Bearer" in answer.headers["www-authenticate"]
        assert "detail" not in answer.json()
    judged = client.post(path, content=body, headers={**typed, **auth()})
    assert judged.status_code in (400, 422) and "error" in judged.json()
    assert not client.engine.store.list_runs()


def test_a_server_without_tokens_is_read_only(api_config: Callable[..., Path]) -> None:
    from fastapi.testclient import TestClient

    from wellkept.api import create_app
    from wellkept.config import load_config
    from wellkept.engine import Engine

    engine = Engine(load_config(api_config(tokens=[""])))      # an unset ${VAR:-}
    with TestClient(create_app(engine)) as anonymous:
        answer = anonymous.post("/maintenance/tasks/purge/run", headers=auth(""))
        assert answer.status_code == 403
        assert "read-only" in answer.json()["error"]
        assert anonymous.post("/maintenance/run-all").status_code == 403
        assert anonymous.get("/maintenance/status").status_code == 200
        page = anonymous.get("/maintenance/dashboard").text
        assert 'id="token"' in page and "this server is read-only" in page
    assert engine.store.list_runs() == []


def test_tokens_are_compared_in_constant_time_against_every_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from wellkept.api import auth as auth_module

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    tokens = auth_module.Tokens(["first-token", "second-token", "", "third-token"])
    assert tokens.accepts("first-token")
    assert len(calls) == 3                          # no early exit after the match
    assert not tokens.accepts("first-toke") and not tokens.accepts("")
    assert {b for _, b in calls} == {b"first-token", b"second-token", b"third-token"}


TWO_TARGETS = f"""\
targets:
  a: {{url: "sqlite:///a.sqlite3"}}
  b: {{url: "sqlite:///b.sqlite3"}}
tasks:
  purge: {{kind: cleanup, targets: [a, b], table: events, date_column: created_at,
          retention: 30d}}
api: {{tokens: ["{TOKEN}"]}}
"""


def two_target_engine(folder: Path, *, with_table: tuple[str, ...] = ("a", "b")) -> Any:
    """An engine over targets a and b (SQLite files; `events` in those of ``with_table``) and
    one cleanup instance `purge` on both."""
    import sqlite3

    from tests.helpers import make_app_db
    from wellkept.config import load_config
    from wellkept.engine import Engine

    for name in ("a", "b"):
        if name in with_table:
            make_app_db(folder / f"{name}.sqlite3")
        else:
            sqlite3.connect(folder / f"{name}.sqlite3").close()
    (folder / "wellkept.yml").write_text(TWO_TARGETS)
    return Engine(load_config(folder / "wellkept.yml"))


def test_name_at_target_runs_the_instance_on_that_one_target(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from wellkept.api import create_app

    with TestClient(create_app(two_target_engine(tmp_path))) as client:
        started = client.post("/maintenance/tasks/purge@b/run", headers=auth())
        assert started.status_code == 202, started.text
        assert len(started.json()["run_ids"]) == 1
        run = wait_finished(client.get, started.json()["run_id"])
        assert (run["task"], run["target"], run["status"]) == ("purge", "b", "completed")
        assert old_rows(tmp_path / "b.sqlite3") == 0
        assert old_rows(tmp_path / "a.sqlite3") == 3000              # the other target untouched
        encoded = client.post("/maintenance/tasks/purge%40a/run", headers=auth())
        assert encoded.status_code == 202, encoded.text
        assert wait_finished(client.get, encoded.json()["run_id"])["target"] == "a"
        assert old_rows(tmp_path / "a.sqlite3") == 0
        elsewhere = client.post("/maintenance/tasks/purge@c/run", headers=auth())
        assert elsewhere.status_code == 400
        assert "does not run on 'c'; its targets: a, b" in elsewhere.json()["error"]
        unknown = client.post("/maintenance/tasks/nope@a/run", headers=auth())
        assert unknown.status_code == 404 and "unknown task 'nope@a'" in unknown.json()["error"]
        kind = client.post("/maintenance/tasks/vacuum@a/run", headers=auth())  # not an instance
        assert kind.status_code == 404 and "unknown task 'vacuum@a'" in kind.json()["error"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "says"), [
    ("get", "/maintenance/history?limit=0", {}, 422, "query.limit"),
    ("get", "/maintenance/history?limit=abc", {}, 422, "query.limit"),
    ("get", "/maintenance/history?limit=1001", {}, 422, "less than or equal to 1000"),
    ("get", "/maintenance/history?offset=-1", {}, 422, "query.offset"),
    ("get", "/maintenance/history?status=finished", {}, 422, "query.status"),
    ("get", "/maintenance/metrics?days=0", {}, 422, "query.days"),
    ("get", "/maintenance/metrics?task_name=nope", {}, 404, "unknown task 'nope'"),
    ("get", "/maintenance/runs/not-a-run", {}, 404, "no run 'not-a-run'"),
    ("post", "/maintenance/tasks/nope/run", {}, 404, "unknown task 'nope'; configured tasks"),
    ("post", "/maintenance/tasks/vacuum/run", {}, 400, 'say which target with "target"'),
    ("post", "/maintenance/tasks/purge/run", {"json": {"target": "nowhere"}}, 400,
     "\"target\": unknown target 'nowhere'"),
    ("post", "/maintenance/tasks/purge/run", {"json": {"dryrun": True}}, 422,
     "body.dryrun: Extra inputs are not permitted"),
    ("post", "/maintenance/tasks/purge/run", {"json": {"dry_run": "yes"}}, 422,
     "body.dry_run"),
    ("post", "/maintenance/tasks/purge/run",
     {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422,
     "JSON decode error"),
    ("post", "/maintenance/tasks/purge/run", {"json": [1, 2]}, 422, "body"),
    ("post", "/maintenance/emergency", {}, 422, "query.task_name: Field required"),
    ("post", "/maintenance/emergency?task_name=nope", {}, 404, "unknown task 'nope'"),
    ("post", "/maintenance/schedule/nope/pause", {}, 404, "unknown schedule 'nope'"),
    ("post", "/maintenance/reports/generate", {"json": {"format_type": "pdf"}}, 422,
     "body.format_type"),
    ("post", "/maintenance/reports/generate", {"json": {"report_type": "monthly"}}, 422,
     "body.report_type"),
])
def test_bad_input_is_a_clear_json_4xx(client: Any, method: str, path: str,
                                       kwargs: dict[str, Any], status: int, says: str) -> None:
    headers = {**auth(), **kwargs.pop("headers", {})} if method == "post" else {}
    answer = client.request(method, path, headers=headers, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert says in answer.json()["error"], answer.json()
    assert not client.engine.store.list_runs()


def test_history_is_paged_newest_first_with_a_next_link(client: Any) -> None:
    engine = client.engine
    ids = [engine.run(engine.resolve(["app-stats"])).results[0].run_id for _ in range(7)]
    engine.run(engine.resolve(["purge"]), dry_run=True)
    first = client.get("/maintenance/history", params={"limit": 3, "task": "app-stats"})
    assert first.status_code == 200
    assert [r["run_id"] for r in first.json()] == ids[::-1][:3]
    def follow(answer: Any) -> Any:
        link = answer.headers["link"]
        assert link.endswith('>; rel="next"') and "cursor=" in link
        return client.get(link[1:link.index(">")])

    second = follow(first)
    assert [r["run_id"] for r in second.json()] == ids[::-1][3:6]
    last = follow(second)
    assert [r["run_id"] for r in last.json()] == ids[:1] and "link" not in last.headers
    skipped = client.get("/maintenance/history",
                         params={"limit": 3, "task": "app-stats", "offset": 3})
    assert [r["run_id"] for r in skipped.json()] == ids[::-1][3:6]
    gone = client.get("/maintenance/history", params={"cursor": "no-such-run"})
    assert gone.status_code == 404 and "to page from" in gone.json()["error"]
    run = first.json()[0]
    assert set(run) == {"run_id", "task", "kind", "target", "status", "dry_run", "trigger",
                        "started_at", "finished_at", "duration_seconds", "message", "metrics",
                        "details", "errors"}
    assert run["started_at"].endswith("Z")
    dry = client.get("/maintenance/history", params={"task": "purge"}).json()
    assert len(dry) == 1 and dry[0]["dry_run"] is True
    assert client.get("/maintenance/history", params={"status": "failed"}).json() == []
    one = client.get(f"/maintenance/runs/{ids[0]}")
    assert one.status_code == 200 and one.json()["run_id"] == ids[0]


def test_pause_and_resume_change_the_store(client: Any) -> None:
    store = client.engine.store
    paused = client.post("/maintenance/schedule/nightly/pause", headers=auth())
    assert paused.status_code == 200
    assert paused.json() == {"schedule": "nightly", "paused": True, "changed": True}
    state = schedules.states(store)["nightly"]
    assert state.paused and state.paused_by == "api@testclient"
    again = client.post("/maintenance/schedule/nightly/pause", headers=auth()).json()
    assert again["changed"] is False
    listed = {s["id"]: s for s in client.get("/maintenance/schedule").json()}
    assert listed["nightly"]["paused"] is True and listed["hourly-stats"]["paused"] is False
    assert listed["nightly"]["next_fire_at"].endswith("T02:00:00.000Z")
    resumed = client.post("/maintenance/schedule/nightly/resume", headers=auth()).json()
    assert resumed == {"schedule": "nightly", "paused": False, "changed": True}
    assert not schedules.states(store)["nightly"].paused


def test_status_has_the_last_result_of_a_task_on_each_of_its_targets(tmp_path: Path) -> None:
    """A task on two targets that fails on one: the failure shows beside the success, and a
    later dry run changes neither."""
    from fastapi.testclient import TestClient

    from wellkept.api import create_app

    engine = two_target_engine(tmp_path, with_table=("a",))  # b has no `events` table
    outcome = engine.run(engine.resolve(["purge"]))
    by_target = {r.target: r for r in outcome.results}
    assert (str(by_target["a"].status), str(by_target["b"].status)) == ("completed", "failed")
    engine.run(engine.resolve(["purge"]), dry_run=True)
    with TestClient(create_app(engine)) as client:
        status = client.get("/maintenance/status").json()
    last = {(r["task"], r["target"]): r for r in status["last_results"]}
    assert set(last) == {("purge", "a"), ("purge", "b")}
    assert last[("purge", "a")]["run_id"] == by_target["a"].run_id
    assert last[("purge", "a")]["status"] == "completed"
    assert last[("purge", "b")]["run_id"] == by_target["b"].run_id
    assert last[("purge", "b")]["status"] == "failed"
    assert "events" in last[("purge", "b")]["message"]


def test_status_and_per_task_figures_match_the_store(client: Any) -> None:
    engine = client.engine
    engine.run(engine.resolve(["purge", "app-stats", "app-stats"]))
    status = client.get("/maintenance/status", params={"schedules": True}).json()
    assert set(status) >= {"timestamp", "coordinator", "running", "last_results", "recovery",
                           "schedules", "process"}
    assert status["process"] is None and status["coordinator"]["running"] is False
    assert {r["task"] for r in status["last_results"]} == {"purge", "app-stats"}
    figures = client.get("/maintenance/metrics").json()
    by_task = {f["task"]: f for f in figures["tasks"]}
    stored = [r for r in engine.store.list_runs(limit=10) if r.task == "app-stats"]
    stats = by_task["app-stats"]
    assert (stats["runs"], stats["completed"], stats["success_rate"]) == (2, 2, 100.0)
    assert stats["duration_max_seconds"] == pytest.approx(
        max(r.duration_seconds or 0 for r in stored), abs=1e-3)
    assert by_task["purge"]["rows_deleted"] == 3000
    only = client.get("/maintenance/metrics", params={"task_name": "purge"}).json()
    assert [f["task"] for f in only["tasks"]] == ["purge"]
    assert client.get("/maintenance/metrics", params={"task_name": "vacuum"}).json()[
        "tasks"] == []                                 # a kind, never run: empty, not 404


def test_health_endpoints_have_seed_004_shapes(client: Any) -> None:
    recovery = client.get("/health/recovery").json()
    assert set(recovery) == {"overall_health", "recovery_queue_depth", "recent_failure_count",
                             "orphaned_task_count", "stuck_task_count", "timestamp"}
    metrics = client.get("/health/recovery/metrics").json()
    assert set(metrics) == {"task_state_distribution", "recovery_success_rate_24h",
                            "total_recovery_attempts_24h", "successful_recoveries_24h",
                            "average_recovery_time_seconds"}
    before = client.get("/health/detailed").json()
    assert before["health"] is None and before["status"] == "unknown"
    engine = client.engine
    engine.run(engine.resolve(["health-check"]))
    detailed = client.get("/health/detailed").json()
    # the host's CPU on a shared machine may make the check degraded; recovery is healthy
    assert detailed["status"] == detailed["health"]["status"] != "unhealthy"
    assert detailed["health"]["targets"]["app"]["status"] == "up"
    assert detailed["health"]["host"]["cpu_percent"] is not None
    assert detailed["recovery"] == {**client.get("/health/recovery").json(),
                                    "timestamp": detailed["recovery"]["timestamp"]}
    assert metrics["task_state_distribution"] == {}
    assert client.get("/health/recovery/metrics").json()["task_state_distribution"] == \
        {"completed": 1}
    exposition = client.get("/metrics")
    assert exposition.headers["content-type"].startswith("text/plain")
    assert 'wellkept_task_runs_total{kind="health"' in exposition.text
    assert f"wellkept_health_score {float(detailed['health']['score'])}" in exposition.text


def test_the_openapi_document_lists_every_contract_path_and_no_cdn_docs(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    served = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == CONTRACT_PATHS
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_reports_generate_in_every_format(client: Any) -> None:
    engine = client.engine
    engine.run(engine.resolve(["purge", "app-stats"]))
    as_json = client.post("/maintenance/reports/generate", headers=auth(),
                          json={"report_type": "weekly", "format_type": "json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    report = as_json.json()
    assert report["report_type"] == "weekly" and report["summary"]["runs"] == 2
    assert report["freed"]["current"]["rows_deleted"] == 3000
    end = datetime.fromisoformat(report["period"]["end"].replace("Z", "+00:00"))
    start = datetime.fromisoformat(report["period"]["start"].replace("Z", "+00:00"))
    assert end - start == timedelta(days=7) and abs(datetime.now(UTC) - end) < timedelta(
        minutes=1)
    as_csv = client.post("/maintenance/reports/generate", headers=auth(),
                         json={"format_type": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(as_csv.text.strip().splitlines()) == 3          # a header and one row per run
    assert "wellkept-daily-" in as_csv.headers["content-disposition"]
    as_html = client.post("/maintenance/reports/generate", headers=auth())   # the defaults
    assert as_html.headers["content-type"].startswith("text/html")
    assert "<svg" in as_html.text and "@media print" in as_html.text


def test_pages_never_skip_or_repeat_runs_that_started_at_the_same_moment(client: Any) -> None:
    import uuid

    from wellkept.records import RunRecord
    from wellkept.types import RunStatus, Trigger

    store = client.engine.store
    moment = datetime(2026, 11, 22, 2, 0, 0, 123456, tzinfo=UTC)
    for i in range(5):  # the same microsecond, and two a microsecond apart
        at = moment + timedelta(microseconds=(i > 2) * (i - 2))
        record = RunRecord(run_id=str(uuid.uuid4()), task="tied", kind="stats", target="app",
                           status=RunStatus.RUNNING, dry_run=False, trigger=Trigger.MANUAL,
                           started_at=at)
        store.start_run(record, {})
        store.finish_run(RunRecord(**{**record.__dict__, "status": RunStatus.COMPLETED,
                                      "finished_at": at}))
    seen: list[str] = []
    answer = client.get("/maintenance/history", params={"limit": 2, "task": "tied"})
    while True:
        seen += [r["run_id"] for r in answer.json()]
        if "link" not in answer.headers:
            break
        link = answer.headers["link"]
        answer = client.get(link[1:link.index(">")])
    assert sorted(seen) == sorted(r.run_id for r in store.list_runs(limit=10, task="tied"))
    assert len(seen) == len(set(seen)) == 5


def test_the_dashboard_shows_runs_in_progress_with_their_checkpoint_and_the_alerts(
        client: Any) -> None:
    import re
    import uuid

    from wellkept.alerts import AlertCenter
    from wellkept.records import RunRecord
    from wellkept.types import RunStatus, Trigger

    engine = client.engine
    run_id = str(uuid.uuid4())
    engine.store.start_run(RunRecord(run_id=run_id, task="purge", kind="cleanup", target="app",
                                     status=RunStatus.RUNNING, dry_run=False,
                                     trigger=Trigger.SCHEDULE, started_at=datetime.now(UTC)),
                           {}, lease_until=datetime.now(UTC) + timedelta(minutes=5))
    # as a cleanup reports them: rows done over rows estimated
    assert engine.store.add_checkpoint(run_id, 1, "batch", 0.8158347, {"last_key": 1234})
    engine.store.set_progress(run_id, 1, 47.0261, "deleting", "batch 12")
    AlertCenter(engine.settings.alerts, engine.store).raise_alert(
        "disk_percent", "host", "critical", "disk / is 97% full", value=97.0)
    page = client.get("/maintenance/dashboard")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    row = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', html, re.S)
    assert row, html
    assert 'value="47.0261"' in row.group(1) and "47% deleting" in row.group(1)
    assert "batch at 0.8%" in row.group(1)                       # the newest checkpoint
    alerts = html[html.index('id="alerts"'):html.index('id="schedules"')]
    assert "disk_percent" in alerts and "disk / is 97% full" in alerts and "critical" in alerts
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "data:,", "/maintenance/dashboard/static/dashboard.css",
        "/maintenance/dashboard/static/dashboard.js"]              # nothing from elsewhere
    assert client.get("/maintenance/dashboard/static/dashboard.js").status_code == 200
    part = client.get("/maintenance/dashboard", params={"fragment": True}).text
    assert "<html" not in part and f'data-run="{run_id}"' in part
    data = client.get("/maintenance/dashboard", params={"format": "json", "days": 3}).json()
    (running,) = data["running"]
    assert running["checkpoint"] == {**running["checkpoint"], "name": "batch",
                                     "percent": 0.8158347}
    assert [a["name"] for a in data["alerts"]] == ["disk_percent"]
    assert set(data["charts"]) == {"durations_seconds", "health_score", "database_size_bytes",
                                   "freed_per_day"}
    assert len(data["charts"]["freed_per_day"]) in (3, 4)


def test_the_dashboard_keeps_every_failure_of_the_day_however_many_runs_came_after(
        client: Any) -> None:
    import re
    import uuid

    from wellkept.records import RunRecord
    from wellkept.types import RunStatus, Trigger

    store = client.engine.store
    start = datetime.now(UTC) - timedelta(hours=6)

    def put(at: datetime, status: RunStatus, task: str) -> str:
        record = RunRecord(run_id=str(uuid.uuid4()), task=task, kind="stats", target="app",
                           status=RunStatus.RUNNING, dry_run=False, trigger=Trigger.SCHEDULE,
                           started_at=at)
        store.start_run(record, {})
        store.finish_run(RunRecord(**{**record.__dict__, "status": status, "finished_at": at,
                                      "message": f"{task} {status}"}))
        return record.run_id

    # a busy day: 20 failures in the morning, then a health check every 5 minutes
    failed = [put(start + timedelta(seconds=i), RunStatus.FAILED, "nightly-purge")
              for i in range(20)]
    for i in range(70):
        put(start + timedelta(minutes=5 * (i + 1)), RunStatus.COMPLETED, "health-check")
    data = client.get("/maintenance/dashboard", params={"format": "json"}).json()
    assert [f["run_id"] for f in data["failures"]] == failed[::-1][:15]   # the newest 15
    assert data["failures_24h"] == 20
    html = client.get("/maintenance/dashboard").text
    card = re.search(r'id="failure-count">failures \(24h\)<b>(\d+)</b>', html)
    assert card and card.group(1) == "20"
    assert "(the newest 15 of 20)" in html and f'data-run="{failed[-1]}"' in html


def test_history_pages_are_read_by_at_most_page_readers_threads_at_once(
        api_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """16 pages asked at once are all answered, but read at most PAGE_READERS at a time: more
    threads reading at once only hand the GIL around (see api/context.py)."""
    import asyncio
    import threading
    import time

    import httpx

    from wellkept.api import context, create_app, routes_runs
    from wellkept.config import load_config
    from wellkept.engine import Engine

    engine = Engine(load_config(api_config()))
    engine.run(engine.resolve(["app-stats"]))
    real, lock = routes_runs.read_page, threading.Lock()
    reading, most = [0], [0]

    def slow_read(*args: Any, **kw: Any) -> Any:
        with lock:
            reading[0] += 1
            most[0] = max(most[0], reading[0])
        try:
            time.sleep(0.05)  # a slow store, so that the requests overlap
            return real(*args, **kw)
        finally:
            with lock:
                reading[0] -= 1

    monkeypatch.setattr(routes_runs, "read_page", slow_read)
    app = create_app(engine)

    async def ask() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = await asyncio.gather(*(http.get("/maintenance/history")
                                             for _ in range(16)))
        assert all(len(a.json()) == 1 for a in answers)
        return [a.status_code for a in answers]

    assert asyncio.run(ask()) == [200] * 16
    assert most[0] == context.PAGE_READERS
