"""The alerts entry point: observe, keep the lifecycle in the store, notify, never raise.

Everything that can raise an alert goes through :class:`AlertCenter`:

- ``evaluate_run(record)`` after every run (the alerts middleware): task failure and any
  threshold figure in the run's metrics;
- ``evaluate_health(report)`` after every health check: targets down, their figures, the host;
- ``raise_alert`` / ``resolve_alert`` for anything else that knows its own condition, such as
  the scheduler's missed runs (``missed_schedule``) or the ``backup_freshness`` check.

Delivery failures are logged as WARNING, retried at once a couple of times, and otherwise left in
the outbox for the next evaluation; a broken store or channel never fails the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from wellkept.alerts import book, rules
from wellkept.alerts.channels import Channel, ChannelError, Message, Notice, channel_for
from wellkept.alerts.rules import Observation
from wellkept.records import iso_z, utcnow
from wellkept.redact import redact
from wellkept.types import Severity

if TYPE_CHECKING:
    from wellkept.config import AlertSettings
    from wellkept.history.store import HistoryStore
    from wellkept.records import RunRecord

log = logging.getLogger("wellkept.alerts")

#: immediate attempts at one delivery, and the pause before the second
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
SEND_TIMEOUT_SECONDS = 5.0


class AlertCenter:
    """Alert evaluation and delivery over one history store."""

    def __init__(self, settings: AlertSettings | None, store: HistoryStore) -> None:
        from wellkept.config import AlertSettings

        self.settings = settings or AlertSettings()
        self.store = store
        self.channels: list[Channel] = []
        for url in self.settings.channels:
            try:
                self.channels.append(channel_for(url))
            except Exception as exc:  # one channel that cannot be built is not a failed run
                log.error("alert channel %s cannot be used: %s", redact(url),
                          redact(f"{type(exc).__name__}: {exc}"))

    # --- entry points ---------------------------------------------------------------------------

    def evaluate_run(self, record: RunRecord) -> list[dict[str, Any]]:
        """After a run: its failure or recovery, and the thresholds its metrics reach."""
        return self.observe(rules.run_observations(self.settings, record))

    def evaluate_health(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        """After a health check (CONTRACT §3's report): targets down or past a threshold, and
        the host's CPU, memory and disks."""
        return self.observe(rules.health_observations(self.settings, report))

    def raise_alert(self, name: str, target: str, severity: Severity | str, message: str, *,
                    value: float | None = None, subject: str = "") -> dict[str, Any] | None:
        """Fire (or keep firing) one alert; notified per the lifecycle rules."""
        found = self.observe([Observation(name, target, Severity(severity), value, message,
                                          subject)])
        return found[0] if found else None

    def resolve_alert(self, name: str, target: str, message: str = "", *,
                      subject: str = "", value: float | None = None) -> dict[str, Any] | None:
        """Clear one alert (notifying its resolution if its firing was notified)."""
        found = self.observe([Observation(name, target, None, value,
                                          message or f"{target}: {name} is clear", subject)])
        return found[0] if found else None

    def observe(self, observations: Iterable[Observation]) -> list[dict[str, Any]]:
        """Record observations, deliver what is due; return the alerts they touch as they
        now stand (firing or just resolved). Never raises."""
        touched: list[dict[str, Any]] = []
        try:
            now = utcnow()
            refs = [book.ChannelRef(c.key, c.label) for c in self.channels]
            with self.store.engine.begin() as conn:
                for obs in observations:
                    row = book.apply(conn, obs, cooldown=self.settings.cooldown, now=now,
                                     channels=refs)
                    if row is not None:
                        touched.append(row)
        except Exception as exc:  # the store failing must not fail the run that observed
            log.error("alerts could not be recorded: %s", redact(f"{type(exc).__name__}: "
                                                                 f"{exc}"), exc_info=True)
            return []
        for row in touched:
            if row["state"] == "firing" and row["fired_at"] == row["last_seen_at"]:
                log.warning("alert %s: %s", row["name"], row["message"])
            elif row["state"] == "resolved" and row["resolved_at"] == row["last_seen_at"]:
                log.info("alert %s resolved: %s", row["name"], row["message"])
        self.deliver_pending()
        return [book.public(r) for r in touched]

    def firing(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [book.public(r) for r in book.firing(conn)]

    def test_channels(self, target: str, message: str) -> dict[str, str | None]:
        """Send a test notification straight to every channel (not through the outbox: a
        test that failed is not retried later); each channel's label and its error, or None
        when it accepted the notification."""
        notice = Notice(event="test", name="notification_test", target=target,
                        severity="info", message=message)
        return self.broadcast(notice)

    def broadcast(self, message: Message) -> dict[str, str | None]:
        """Send ``message`` straight to every channel (a test, a report), each with the same
        immediate retries as an alert; each channel's label and its error, or None."""
        return {channel.label: self._send(channel, message) for channel in self.channels}

    # --- delivery -------------------------------------------------------------------------------

    def deliver_pending(self) -> int:
        """Send every notification in the outbox; return how many were delivered."""
        try:
            with self.store.engine.connect() as conn:
                queue = book.pending(conn)
        except Exception as exc:
            log.error("the alert outbox could not be read: %s", redact(str(exc)))
            return 0
        by_key = {c.key: c for c in self.channels}
        sent = 0
        down: set[str] = set()
        for item in queue:
            channel = by_key.get(item["channel_key"])
            if channel is None:  # no longer configured: give up on it quietly
                self._mark(item["id"], book.MAX_ATTEMPTS, "channel no longer configured")
                continue
            if channel.key in down:  # failed just now: the rest waits for the next evaluation
                continue
            error = self._send(channel, _notice(item))
            if error is not None:
                down.add(channel.key)
            attempts = item["attempts"] + (1 if error is None else ATTEMPTS)
            self._mark(item["id"], attempts, error)
            sent += error is None
        return sent

    def _send(self, channel: Channel, notice: Message) -> str | None:
        error = None
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                channel.send(notice, SEND_TIMEOUT_SECONDS)
                return None
            except ChannelError as exc:
                error = str(exc)
            except Exception as exc:  # a sender bug (or Apprise's) is still only one channel
                error = redact(f"{type(exc).__name__}: {exc}")
                log.error("alert channel %s crashed: %s", channel.label, error, exc_info=True)
                break
        log.warning("alert %s not delivered to %s after %d attempts (kept for the next try): "
                    "%s", notice.name, channel.label, ATTEMPTS, error)
        return error

    def _mark(self, delivery_id: int, attempts: int, error: str | None) -> None:
        try:
            with self.store.engine.begin() as conn:
                book.delivered(conn, delivery_id, attempts, utcnow(), error)
        except Exception as exc:
            log.error("the alert outbox could not be updated: %s", redact(str(exc)))


def _notice(item: dict[str, Any]) -> Notice:
    return Notice(event=item["event"], name=item["name"], target=item["target"],
                  severity=item["severity"], message=item["message"], value=item["value"],
                  subject=item["subject"], since=iso_z(item["fired_at"]),
                  resolved_at=iso_z(item["resolved_at"]) if item["event"] == "resolved"
                  else None)
