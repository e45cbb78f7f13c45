"""The alerts entry point: observe, keep the lifecycle in the store, notify, never raise.

Everything that can raise an alert goes through :class:`AlertCenter`:

- ``evaluate_run(record, backups=settings)`` after every run (the alerts middleware): task
  failure, any threshold figure in the run's metrics, and every target's backup freshness;
- ``evaluate_health(report)`` for a health report: targets down, their figures, the host (the
  health check itself also judges backup freshness, see ``health.check``);
- ``raise_alert`` / ``resolve_alert`` for anything else that knows its own condition, such as
  the scheduler's missed runs (``missed_schedule``) or the ``backup_freshness`` check.

Delivery failures are logged as WARNING, retried at once a couple of times, and otherwise left in
the outbox for the next evaluation; a broken store or channel never fails the run. Channels are
served side by side, and one notification gets ``DELIVERY_DEADLINE_SECONDS`` in all, tries and
pauses included: a channel that swallows packets costs an evaluation that long, not three full
timeouts, however many channels do the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wellkept.alerts import book, rules
from wellkept.alerts.channels import Channel, ChannelError, Message, Notice, channel_for
from wellkept.alerts.rules import Observation
from wellkept.records import iso_z, utcnow
from wellkept.redact import redact
from wellkept.types import Severity
from wellkept.units import plural

if TYPE_CHECKING:
    from wellkept.config import AlertSettings, Settings
    from wellkept.history.store import HistoryStore
    from wellkept.records import RunRecord
    from wellkept.registry import Registry

log = logging.getLogger("wellkept.alerts")

#: immediate attempts at one delivery, and the pause before the second
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
#: one try's network timeout (per connect or read), and all the tries of one notification to
#: one channel together: a webhook that accepts and never answers costs this, and no more
SEND_TIMEOUT_SECONDS = 3.0
DELIVERY_DEADLINE_SECONDS = 5.0
#: a retry is not started with less time than this left (it would fail on its short timeout
#: and count against a channel that may be merely slow)
MIN_TRY_SECONDS = 1.0
#: how long past the deadline an evaluation waits for a sender that ignores its timeout
#: (Apprise's plugins keep their own) before it goes on without it
DEADLINE_SLACK_SECONDS = 0.5
#: an alert about something gone from this config is resolved once nothing has seen it for
#: this long (or the cooldown, if longer): another process sharing the store may still judge it
ORPHAN_GRACE = timedelta(hours=1)


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

    def evaluate_run(self, record: RunRecord, *,
                     backups: Settings | None = None) -> list[dict[str, Any]]:
        """After a run: its failure or recovery, and the thresholds its metrics reach; with
        the whole config as ``backups``, every target's backup freshness too (a run that
        raises and resolves nothing, a dry or skipped one, judges none)."""
        observations = rules.run_observations(self.settings, record)
        if backups is not None and rules.judged(record):
            from wellkept.backups import watch

            observations += watch.observations(backups, self.store, utcnow(),
                                               skip={o.key for o in observations})
        return self.observe(observations)

    def evaluate_health(self, report: dict[str, Any],
                        declared: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        """After a health check (CONTRACT §3's report): targets down or past a threshold, and
        the host's CPU, memory and disks; with ``declared``, the targets degraded by their own
        word (see ``rules.health_observations``)."""
        return self.observe(rules.health_observations(self.settings, report, declared))

    def orphans(self, settings: Settings, registry: Registry,
                now: datetime | None = None) -> list[Observation]:
        """Resolutions for the firing alerts whose schedule, target, task or disk has left the
        config (see ``rules.orphaned``): nothing would judge them again, and they would fire
        for ever. Only alerts not seen for ``ORPHAN_GRACE`` (or the cooldown, if longer): a
        store may be shared by processes with other configs (a rolling deploy, a Django
        project beside a coordinator), and an alert another one still observes is not
        orphaned. Never raises."""
        grace = max(self.settings.cooldown, ORPHAN_GRACE)
        seen_before = (now or utcnow()) - grace
        try:
            with self.store.engine.connect() as conn:
                rows = [r for r in book.firing(conn) if r["last_seen_at"] <= seen_before]
        except Exception as exc:
            log.error("alerts could not be read: %s", redact(f"{type(exc).__name__}: {exc}"))
            return []
        kinds = registry.task_names()
        try:
            judges = self._judges(settings, rows)
        except Exception as exc:
            log.error("alerts could not be judged: %s", redact(f"{type(exc).__name__}: {exc}"))
            return []

        def default_target(kind: str) -> str | None:
            return registry.task_class(kind).default_target if kind in kinds else None

        return [Observation(r["name"], r["target"], None, None, f"{why}: resolved",
                            r["subject"] or "")
                for r in rows if (why := rules.orphaned(r, settings, kinds, default_target,
                                                        judges))]

    def _judges(self, settings: Settings, rows: list[dict[str, Any]]) -> rules.Judges:
        """What still judges the alerts in ``rows`` that no task instance names."""
        import sqlalchemy as sa

        from wellkept.backups import watch
        from wellkept.history.schema import runs

        disks = set(settings.health.disks)
        for inst in settings.tasks.values():
            params: Any = inst.params
            if inst.kind == "health" and params.disks:  # its own disks (HealthParams)
                disks.update(params.disk_paths(settings.base_dir))
        freshness = {rule.target for rule in watch.rules(settings) if rule.implicit}
        asked = {r["target"] for r in rows if r["name"] == rules.BACKUP_FRESHNESS
                 and r["subject"] == rules.DEFAULT_FRESHNESS} - freshness
        if asked:  # a kind run judges it too (`wellkept run backup_freshness --target T`)
            with self.store.engine.connect() as conn:
                freshness |= set(conn.execute(
                    sa.select(runs.c.target).distinct()
                    .where(runs.c.task == rules.DEFAULT_FRESHNESS, runs.c.dry_run.is_(False),
                           runs.c.target.in_(sorted(asked)))).scalars())
        return rules.Judges(disks=disks, default_freshness=freshness)

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
        return {channel.label: self._send(channel, message)[0] for channel in self.channels}

    # --- delivery -------------------------------------------------------------------------------

    def deliver_pending(self) -> int:
        """Send every notification in the outbox; return how many were delivered.

        Each channel is served in its own thread, its rows in order, and the evaluation waits
        for them only until the delivery deadline (plus a little slack) has passed: what a
        channel has not managed by then waits in the outbox for the next evaluation."""
        try:
            with self.store.engine.connect() as conn:
                queue = book.pending(conn)
        except Exception as exc:
            log.error("the alert outbox could not be read: %s", redact(str(exc)))
            return 0
        by_key = {c.key: c for c in self.channels}
        work: dict[str, list[dict[str, Any]]] = {}
        for item in queue:
            if item["channel_key"] not in by_key:  # no longer configured: give up on it quietly
                self._mark(item["id"], book.MAX_ATTEMPTS, "channel no longer configured")
                continue
            work.setdefault(item["channel_key"], []).append(item)
        if not work:
            return 0
        stop = threading.Event()
        outcomes: dict[str, list[tuple[dict[str, Any], int, str | None]]] = {}
        threads: dict[str, threading.Thread] = {}
        for key, items in work.items():
            outcomes[key] = []
            threads[key] = threading.Thread(
                target=self._serve, name=f"wellkept-alert-{key[:8]}",
                args=(by_key[key], items, outcomes[key], stop),
                daemon=True)  # a sender that hangs must not keep the process alive
            threads[key].start()
        until = time.monotonic() + DELIVERY_DEADLINE_SECONDS + DEADLINE_SLACK_SECONDS
        for thread in threads.values():
            thread.join(max(0.0, until - time.monotonic()))
        stop.set()  # a late thread starts nothing more
        sent = 0
        for key, found in outcomes.items():
            done = list(found)  # what a late thread still sends is not recorded: sent again
            for item, tries, error in done:
                self._mark(item["id"], item["attempts"] + tries, error)
                sent += error is None
            if threads[key].is_alive() and len(done) < len(work[key]):  # sender ignored timeout
                stuck = work[key][len(done)]
                error = f"{by_key[key].label}: no answer within {DELIVERY_DEADLINE_SECONDS:g}s"
                log.warning("alert %s not delivered to %s (kept for the next try): %s",
                            stuck["name"], by_key[key].label, error)
                self._mark(stuck["id"], stuck["attempts"] + 1, error)
        return sent

    def _serve(self, channel: Channel, items: list[dict[str, Any]],
               done: list[tuple[dict[str, Any], int, str | None]],
               stop: threading.Event) -> None:
        """One channel's rows, in order; a failure leaves the rest for the next evaluation."""
        for item in items:
            if stop.is_set():
                return
            error, tries = self._send(channel, _notice(item))
            done.append((item, tries, error))
            if error is not None:
                return

    def _send(self, channel: Channel, notice: Message,
              deadline: float = DELIVERY_DEADLINE_SECONDS) -> tuple[str | None, int]:
        """Up to ATTEMPTS tries, all within ``deadline`` seconds; the error (None once
        delivered) and the number of tries made."""
        error = None
        tries = 0
        end = time.monotonic() + deadline
        for attempt in range(ATTEMPTS):
            if attempt:
                pause = BACKOFF_SECONDS * 2 ** (attempt - 1)
                if end - time.monotonic() - pause < MIN_TRY_SECONDS:
                    break
                time.sleep(pause)
            tries += 1
            try:
                channel.send(notice, min(SEND_TIMEOUT_SECONDS, end - time.monotonic()))
                return None, tries
            except ChannelError as exc:
                error = str(exc)
            except Exception as exc:  # a sender bug (or Apprise's) is still only one channel
                error = redact(f"{type(exc).__name__}: {exc}")
                log.error("alert channel %s crashed: %s", channel.label, error, exc_info=True)
                break
        log.warning("alert %s not delivered to %s after %s (kept for the next try): %s",
                    notice.name, channel.label, plural(tries, "attempt"), error)
        return error, tries

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
