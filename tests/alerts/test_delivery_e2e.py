"""Alerts delivered for real: an email to a local SMTP server (aiosmtpd), a JSON webhook and an
Apprise form post to local HTTP servers; a channel that is down is retried from the outbox."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import sqlalchemy as sa

from tests.helpers import free_port, run_cli
from tests.servers import blackhole, http_capture, smtp_capture
from wellkept.history.schema import alert_deliveries, alerts


def _rows(config: Path, table: sa.Table) -> list[dict[str, object]]:
    engine = sa.create_engine(f"sqlite:///{config.parent / '.wellkept' / 'state.db'}")
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    engine.dispose()
    return rows


def test_email_and_webhook_fire_once_then_resolve(write_config: Callable[[str], Path],
                                                  postgres_db: str) -> None:
    down = free_port()
    with smtp_capture() as (smtp_port, mails), http_capture() as hooks:
        channels = (f'["json://127.0.0.1:{hooks.port}/hook", '
                    f'"smtp://127.0.0.1:{smtp_port}/?to=ops@example.com,dba@example.com'
                    f'&from=wellkept@example.com"]')
        config = write_config(f"""
            targets:
              app: {{url: "postgresql://postgres@127.0.0.1:{down}/app", timeout: 2s}}
            alerts:
              channels: {channels}
              cooldown: 1h
              # only target_down here: the shared servers' load is not this test's business
              thresholds: {{cpu_percent: {{}}, memory_percent: {{}}, disk_percent: {{}},
                            connection_percent: {{}}, query_seconds: {{}},
                            replication_lag_seconds: {{}}}}
            """)
        first = run_cli("-c", str(config), "health", "-o", "json")
        assert first.returncode == 1
        assert len(hooks) == 1 and len(mails) == 1, (hooks, mails, first.stderr)
        body = json.loads(hooks[0]["body"])
        assert hooks[0]["path"] == "/hook"
        assert hooks[0]["headers"]["Content-Type"] == "application/json"
        assert body["type"] == "failure"
        assert body["title"] == "[wellkept] CRITICAL: target_down on app"
        assert body["alert"]["name"] == "target_down" and body["alert"]["target"] == "app"
        assert body["alert"]["severity"] == "critical" and body["alert"]["event"] == "firing"
        assert "refused" in body["alert"]["message"].lower()
        mail = mails[0]
        assert mail["from"] == "wellkept@example.com"
        assert mail["to"] == ["ops@example.com", "dba@example.com"]
        assert mail["msg"]["Subject"] == "[wellkept] CRITICAL: target_down on app"
        text = mail["msg"].get_content()
        assert "alert:    target_down" in text and "severity: critical" in text
        # seen firing again within the cooldown: kept, not sent again (dedupe)
        again = run_cli("-c", str(config), "health", "-o", "json")
        assert again.returncode == 1
        assert len(hooks) == 1 and len(mails) == 1
        firing = [a for a in _rows(config, alerts) if a["state"] == "firing"]
        assert [(a["name"], a["target"]) for a in firing] == [("target_down", "app")]
        # the target comes back: both channels hear it resolved
        config.write_text(config.read_text().replace(f"postgresql://postgres@127.0.0.1:"
                                                     f"{down}/app", postgres_db))
        back = run_cli("-c", str(config), "health", "-o", "json")
        assert back.returncode == 0, back.stderr
        assert len(hooks) == 2 and len(mails) == 2
        resolved = json.loads(hooks[1]["body"])
        assert resolved["type"] == "success" and resolved["alert"]["event"] == "resolved"
        assert mails[1]["msg"]["Subject"] == "[wellkept] RESOLVED: target_down on app"
    assert [a["state"] for a in _rows(config, alerts)] == ["resolved"]
    assert all(d["delivered_at"] is not None for d in _rows(config, alert_deliveries))


def test_a_failing_channel_is_retried_and_never_fails_the_run(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    hook_port = free_port()  # nothing listens there yet
    with smtp_capture() as (smtp_port, mails):
        config = write_config(f"""
            targets:
              local: {{url: "sqlite:///{app_db}"}}
            tasks:
              broken: {{kind: cleanup, target: local, table: no_such_table,
                        date_column: created_at, retention: 30d}}
              fine: {{kind: stats, target: local}}
            alerts:
              channels: ["json://127.0.0.1:{hook_port}/hook",
                         "smtp://127.0.0.1:{smtp_port}/?to=ops@example.com"]
            """)
        t0 = time.monotonic()
        proc = run_cli("-c", str(config), "run", "broken", "fine", "-o", "json")
        took = time.monotonic() - t0
        batch = json.loads(proc.stdout)
        assert [r["status"] for r in batch["results"]] == ["failed", "completed"]
        assert proc.returncode == 1  # from the failed task, not from the channel
        assert "not delivered to json://127.0.0.1" in proc.stderr
        assert "after 3 attempts" in proc.stderr
        assert took < 15
        assert len(mails) == 1  # the working channel was not held back
        assert mails[0]["msg"]["Subject"] == "[wellkept] CRITICAL: task_failure on local broken"
        pending = [d for d in _rows(config, alert_deliveries) if d["delivered_at"] is None]
        # three attempts after each of the two runs' evaluations
        assert len(pending) == 1 and pending[0]["attempts"] == 6
        assert "json://127.0.0.1" in str(pending[0]["channel"])
        # the webhook comes up: the next evaluation (any run) delivers what was kept
        with http_capture(hook_port) as hooks:
            run_cli("-c", str(config), "run", "fine", "-o", "json")
            assert len(hooks) == 1
            assert json.loads(hooks[0]["body"])["alert"]["name"] == "task_failure"
        assert len(mails) == 1  # not sent twice to the channel that had it
    assert all(d["delivered_at"] is not None for d in _rows(config, alert_deliveries))


def test_apprise_urls_are_delivered_through_apprise(write_config: Callable[[str], Path],
                                                    app_db: Path) -> None:
    with http_capture() as hooks:
        config = write_config(f"""
            targets:
              local: {{url: "sqlite:///{app_db}"}}
            tasks:
              broken: {{kind: cleanup, target: local, table: nope, date_column: c,
                        retention: 1d}}
            alerts:
              channels: ["form://127.0.0.1:{hooks.port}/apprise"]
            """)
        run_cli("-c", str(config), "run", "broken")
        assert len(hooks) == 1
    form = {k: v[0] for k, v in parse_qs(hooks[0]["body"].decode()).items()}
    assert hooks[0]["path"] == "/apprise"
    assert form["title"] == "[wellkept] CRITICAL: task_failure on local broken"
    assert "broken on local ended failed" in form["message"]
    assert form["type"] == "failure"


def test_channels_that_swallow_packets_cost_a_run_one_deadline(
        write_config: Callable[[str], Path], app_db: Path) -> None:
    """A webhook and a mail server that accept the connection and never answer (the packets
    vanish) cost the run one delivery deadline (5 s) together, not three timeouts each; the
    working channel beside them gets its notification, and the run's status is its own."""
    with blackhole() as hook_hole, blackhole() as mail_hole, http_capture() as hooks:
        config = write_config(f"""
            targets:
              local: {{url: "sqlite:///{app_db}"}}
            tasks:
              broken: {{kind: cleanup, target: local, table: no_such_table,
                        date_column: created_at, retention: 30d}}
            alerts:
              channels: ["json://127.0.0.1:{hook_hole}/hook",
                         "smtp://127.0.0.1:{mail_hole}/?to=ops@example.com",
                         "json://127.0.0.1:{hooks.port}/hook"]
            """)
        t0 = time.monotonic()
        proc = run_cli("-c", str(config), "run", "broken", "-o", "json")
        took = time.monotonic() - t0
        assert proc.returncode == 1, proc.stderr  # the failed task's, not the channels'
        assert [r["status"] for r in json.loads(proc.stdout)["results"]] == ["failed"]
        assert len(hooks) == 1
        assert json.loads(hooks[0]["body"])["alert"]["name"] == "task_failure"
        # startup and the run itself take a couple of seconds on a loaded machine; before
        # the deadline, the two dead channels took 2 x (3 x 5 s + 1.5 s) = 33 s
        assert took < 5 + 6, (took, proc.stderr)
        assert proc.stderr.count("kept for the next try") == 2, proc.stderr
    pending = [d for d in _rows(config, alert_deliveries) if d["delivered_at"] is None]
    assert sorted(str(d["channel"]).split(":")[0] for d in pending) == ["json", "smtp"]
    assert all(d["attempts"] >= 1 and "timed out" in str(d["last_error"]) for d in pending), \
        pending
