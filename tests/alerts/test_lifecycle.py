"""The alert lifecycle on a real store: dedupe, cooldown reminders, escalation, flapping, and
the entry points the scheduler and the backup-freshness check call."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wellkept.alerts import MISSED_SCHEDULE, AlertCenter
from wellkept.alerts.channels import Channel, Notice
from wellkept.config import AlertSettings
from wellkept.history.store import HistoryStore


class Recorder(Channel):
    """A channel that keeps what it is sent (the delivery tests use real servers)."""

    def __init__(self) -> None:
        super().__init__("json://recorder/")
        self.sent: list[Notice] = []

    def send(self, notice: Notice, timeout: float) -> None:
        self.sent.append(notice)


@pytest.fixture
def center(tmp_path: Path) -> tuple[AlertCenter, Recorder]:
    store = HistoryStore(f"sqlite:///{tmp_path / 'state.db'}")
    # migrate now: the store does it on first use, which would otherwise fall between the
    # first alert's timestamp and the second's and, on a slow machine, outlast the cooldown
    assert store.engine is not None
    settings = AlertSettings(cooldown=timedelta(seconds=1))
    c = AlertCenter(settings, store)
    recorder = Recorder()
    c.channels = [recorder]
    return c, recorder


def events(rec: Recorder) -> list[tuple[str, str]]:
    return [(n.event, n.severity) for n in rec.sent]


def test_dedupe_then_reminder_after_the_cooldown(center: tuple[AlertCenter, Recorder]) -> None:
    import time

    c, rec = center
    c.raise_alert("disk_percent", "host", "warning", "91%", value=91, subject="/")
    c.raise_alert("disk_percent", "host", "warning", "91%", value=91, subject="/")
    assert events(rec) == [("firing", "warning")]
    time.sleep(1.1)
    c.raise_alert("disk_percent", "host", "warning", "92%", value=92, subject="/")
    assert events(rec) == [("firing", "warning")] * 2  # the reminder
    assert [a["value"] for a in c.firing()] == [92]


def test_worse_is_notified_at_once_and_resolution_once(
        center: tuple[AlertCenter, Recorder]) -> None:
    c, rec = center
    c.raise_alert("disk_percent", "host", "warning", "90%", value=90, subject="/")
    c.raise_alert("disk_percent", "host", "critical", "96%", value=96, subject="/")
    assert events(rec) == [("firing", "warning"), ("firing", "critical")]
    resolved = c.resolve_alert("disk_percent", "host", "back to 50%", subject="/", value=50)
    assert resolved is not None and resolved["state"] == "resolved"
    assert c.resolve_alert("disk_percent", "host", subject="/") is None  # nothing firing
    assert events(rec)[-1] == ("resolved", "critical") and len(rec.sent) == 3
    assert c.firing() == []


def test_flapping_within_the_cooldown_stays_quiet(center: tuple[AlertCenter, Recorder]) -> None:
    c, rec = center
    c.raise_alert(MISSED_SCHEDULE, "nightly", "warning", "missed 02:00")
    c.resolve_alert(MISSED_SCHEDULE, "nightly")
    c.raise_alert(MISSED_SCHEDULE, "nightly", "warning", "missed 02:05")
    assert events(rec) == [("firing", "warning"), ("resolved", "warning")]
    assert [a["message"] for a in c.firing()] == ["missed 02:05"]  # kept, just not sent


def test_keys_are_separate_per_target_and_subject(center: tuple[AlertCenter, Recorder]) -> None:
    c, rec = center
    c.raise_alert("disk_percent", "host", "warning", "a", subject="/")
    c.raise_alert("disk_percent", "host", "warning", "b", subject="/var")
    c.raise_alert("backup_freshness", "app", "critical", "no verified backup for 3 days")
    assert len(rec.sent) == 3
    assert sorted((a["name"], a.get("subject", "")) for a in c.firing()) == [
        ("backup_freshness", ""), ("disk_percent", "/"), ("disk_percent", "/var")]


def test_a_channel_that_cannot_be_built_is_logged_and_left_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from wellkept.alerts import TASK_FAILURE

    store = HistoryStore(f"sqlite:///{tmp_path / 'state.db'}")
    # past validation (a plugin's settings, an integration whose package is missing)
    settings = AlertSettings.model_construct(channels=["json://[bad/hook"],
                                             cooldown=timedelta(minutes=15), thresholds={})
    with caplog.at_level(logging.ERROR, logger="wellkept.alerts"):
        c = AlertCenter(settings, store)
        found = c.raise_alert(TASK_FAILURE, "app", "critical", "nightly failed")
    assert c.channels == []
    assert found is not None and found["state"] == "firing"  # still recorded
    assert any("alert channel json://[bad/hook cannot be used" in r.getMessage()
               for r in caplog.records)
