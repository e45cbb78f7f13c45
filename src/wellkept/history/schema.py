"""The state store's tables (SQLAlchemy Core). Alembic migrations create and evolve them.

``runs`` is the CommandLog: a row is written before a run starts and completed after it ends.
The lease and progress columns, ``checkpoints`` and ``schedule_state`` are the seams the
coordinator and recovery build on. ``alerts``, ``alert_deliveries`` (the notification outbox) and
``target_status`` (each target's last health status and since when) keep the alert lifecycle.
``log_rotations`` is logrotate's state file: when each log was last rotated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

HEAD_REVISION = "0005"


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

runs = sa.Table(
    "wk_runs", metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("schedule", sa.String(200)),
    sa.Column("scheduled_for", UTCDateTime()),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("metrics", sa.JSON, nullable=False, default=dict),
    sa.Column("details", sa.JSON, nullable=False, default=dict),
    sa.Column("errors", sa.JSON, nullable=False, default=list),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    sa.Column("host", sa.String(255), nullable=False, default=""),
    sa.Column("pid", sa.Integer, nullable=False, default=0),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("heartbeat_at", UTCDateTime()),
    sa.Column("progress_percent", sa.Float),
    sa.Column("progress_step", sa.String(200)),
    sa.Column("progress_message", sa.Text),
)
sa.Index("ix_wk_runs_started", runs.c.started_at)
sa.Index("ix_wk_runs_task_started", runs.c.task, runs.c.started_at)
sa.Index("ix_wk_runs_status", runs.c.status)

checkpoints = sa.Table(
    "wk_checkpoints", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("wk_runs.run_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("percent", sa.Float, nullable=False, default=0.0),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_wk_checkpoints_run", checkpoints.c.run_id, checkpoints.c.id)

schedule_state = sa.Table(
    "wk_schedule_state", metadata,
    sa.Column("schedule", sa.String(200), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("last_fire_at", UTCDateTime()),
    sa.Column("next_fire_at", UTCDateTime()),
    sa.Column("last_status", sa.String(20)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: the backups catalog: one row per backup wellkept wrote (rebuildable from the manifests)
backups = sa.Table(
    "wk_backups", metadata,
    sa.Column("backup_id", sa.String(200), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("engine", sa.String(50), nullable=False),
    sa.Column("format", sa.String(50), nullable=False),
    sa.Column("storage", sa.Text, nullable=False),
    sa.Column("artifact", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("verified_at", UTCDateTime()),
    sa.Column("verify_tier", sa.String(20)),
    sa.Column("verify_status", sa.String(20)),
    sa.Column("verify_message", sa.Text),
    sa.Column("restore_seconds", sa.Float),
    sa.Column("pruned_at", UTCDateTime()),
)
sa.Index("ix_wk_backups_target_created", backups.c.target, backups.c.created_at)

#: one row per alert episode: fired, (re-)notified, resolved; a key fires at most once at a time
alerts = sa.Table(
    "wk_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False, default=""),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("fired_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("notified_at", UTCDateTime()),
    sa.Column("notified_severity", sa.String(20)),
)
sa.Index("ix_wk_alerts_key", alerts.c.name, alerts.c.target, alerts.c.subject, alerts.c.state)

#: the notification outbox: one row per (alert event, channel) until it is delivered
alert_deliveries = sa.Table(
    "wk_alert_deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("wk_alerts.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("channel_key", sa.String(64), nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("delivered_at", UTCDateTime()),
    sa.Column("last_error", sa.Text),
)
sa.Index("ix_wk_alert_deliveries_pending", alert_deliveries.c.delivered_at)

#: each target's health as last checked, and since when it has been so
target_status = sa.Table(
    "wk_target_status", metadata,
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("since", UTCDateTime(), nullable=False),
    sa.Column("checked_at", UTCDateTime(), nullable=False),
    sa.Column("latency_ms", sa.Float),
    sa.Column("error", sa.Text),
)

#: logrotate's state file: each log's last rotation (keyed by its real path, shared by every
#: task that rotates it, as logrotate's state is)
log_rotations = sa.Table(
    "wk_log_rotations", metadata,
    sa.Column("path", sa.String(4096), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("rotated_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
