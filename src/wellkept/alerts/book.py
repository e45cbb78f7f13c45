"""The alert lifecycle in the store: firing, re-notified after the cooldown, resolved.

A key (name, target, subject) has at most one ``firing`` row. Seeing it firing again only
updates that row (dedupe); a notification goes out when it first fires, when it gets worse
(warning to critical), when the cooldown has passed since the last one (a reminder), and when it
resolves after having been notified. An alert that resolves and fires again within the cooldown
is not notified again until the cooldown has passed (flapping stays quiet).

Notifications are written to an outbox (``wk_alert_deliveries``), one row per channel, in the
same transaction as the state change; ``pending`` lists what is still to be delivered, so a
channel that was down gets the message on a later evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.alerts.rules import Observation
from wellkept.history.schema import alert_deliveries, alerts
from wellkept.types import Severity

#: attempts at one delivery (across evaluations) before the outbox gives up on it
MAX_ATTEMPTS = 30
RANK = {None: 0, "warning": 1, "critical": 2, "info": 0}


@dataclass(frozen=True)
class ChannelRef:
    """A configured channel as the outbox knows it: a stable key and a printable name."""

    key: str
    label: str


def _key_filter(obs: Observation) -> Any:
    return sa.and_(alerts.c.name == obs.name, alerts.c.target == obs.target,
                   alerts.c.subject == obs.subject)


def apply(conn: sa.Connection, obs: Observation, *, cooldown: timedelta, now: datetime,
          channels: list[ChannelRef]) -> dict[str, Any] | None:
    """Record one observation; return the alert row as it now stands (None when clear and
    nothing was firing)."""
    firing = conn.execute(sa.select(alerts).where(_key_filter(obs), alerts.c.state == "firing")
                          ).mappings().first()
    if obs.severity is None:
        if firing is None:
            return None
        conn.execute(alerts.update().where(alerts.c.id == firing["id"]).values(
            state="resolved", resolved_at=now, last_seen_at=now, message=obs.message,
            value=obs.value if obs.value is not None else firing["value"]))
        if firing["notified_at"] is not None:
            _enqueue(conn, firing["id"], "resolved", firing["severity"], channels, now)
        return _row(conn, firing["id"])
    severity = str(obs.severity)
    if firing is None:
        alert_id = conn.execute(alerts.insert().values(
            name=obs.name, target=obs.target, subject=obs.subject, severity=severity,
            state="firing", value=obs.value, message=obs.message, fired_at=now,
            last_seen_at=now)).inserted_primary_key[0]  # type: ignore[index]
        last = _last_notified(conn, obs)
        due = last is None or now - last >= cooldown
    else:
        alert_id = firing["id"]
        conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
            severity=severity, value=obs.value, message=obs.message, last_seen_at=now))
        notified = firing["notified_at"]
        if notified is None:  # held back so far by the flapping guard
            last = _last_notified(conn, obs)
            due = last is None or now - last >= cooldown
        else:  # a reminder after the cooldown, or at once when it got worse
            due = (now - notified >= cooldown
                   or RANK.get(severity, 0) > RANK.get(firing["notified_severity"], 0))
    if due:
        conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
            notified_at=now, notified_severity=severity))
        _enqueue(conn, alert_id, "firing", severity, channels, now)
    return _row(conn, alert_id)


def _last_notified(conn: sa.Connection, obs: Observation) -> datetime | None:
    """When this key was last notified as firing, in any episode (the flapping guard)."""
    value = conn.execute(sa.select(sa.func.max(alerts.c.notified_at)).where(_key_filter(obs))
                         ).scalar()
    return value if isinstance(value, datetime) else None


def _enqueue(conn: sa.Connection, alert_id: int, event: str, severity: str,
             channels: list[ChannelRef], now: datetime) -> None:
    for channel in channels:
        conn.execute(alert_deliveries.insert().values(
            alert_id=alert_id, event=event, severity=severity, channel_key=channel.key,
            channel=channel.label, created_at=now, attempts=0))


def _row(conn: sa.Connection, alert_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().one()
    return dict(row)


def pending(conn: sa.Connection) -> list[dict[str, Any]]:
    """Deliveries not yet made, oldest first, with their alert's fields."""
    query = (sa.select(alert_deliveries, alerts.c.name, alerts.c.target, alerts.c.subject,
                       alerts.c.value, alerts.c.message, alerts.c.fired_at, alerts.c.resolved_at,
                       alerts.c.state)
             .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
             .where(alert_deliveries.c.delivered_at.is_(None),
                    alert_deliveries.c.attempts < MAX_ATTEMPTS)
             .order_by(alert_deliveries.c.id))
    return [dict(r) for r in conn.execute(query).mappings()]


def delivered(conn: sa.Connection, delivery_id: int, attempts: int, now: datetime,
              error: str | None) -> None:
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if error is None:
        values["delivered_at"] = now
    conn.execute(alert_deliveries.update().where(alert_deliveries.c.id == delivery_id)
                 .values(**values))


def firing(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(alerts).where(alerts.c.state == "firing")
                        .order_by(alerts.c.fired_at, alerts.c.id)).mappings()
    return [dict(r) for r in rows]


def public(row: dict[str, Any]) -> dict[str, Any]:
    """An alert as the JSON outputs show it (CONTRACT §3's ``alerts`` entries, and more)."""
    from wellkept.records import iso_z

    out = {"name": row["name"], "severity": row["severity"], "value": row["value"],
           "target": row["target"], "state": row["state"], "message": row["message"],
           "since": iso_z(row["fired_at"])}
    if row["subject"]:
        out["subject"] = row["subject"]
    if row.get("resolved_at"):
        out["resolved_at"] = iso_z(row["resolved_at"])
    return out


__all__ = ["MAX_ATTEMPTS", "ChannelRef", "Severity", "apply", "delivered", "firing", "pending",
           "public"]
