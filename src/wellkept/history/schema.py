"""The state store's tables (SQLAlchemy Core). Alembic migrations create and evolve them.

``runs`` is the CommandLog: a row is written before a run starts and completed after it ends.
The lease and progress columns and ``checkpoints`` carry recovery; ``schedule_state``,
``schedule_slots``, ``coordinators``, ``leases`` and ``requests`` carry the coordinator;
``recovery_queue`` and ``recovery_attempts`` carry recovery of interrupted runs; ``dispatches``
the runs sent to Celery workers. ``alerts``,
``alert_deliveries`` (the notification outbox) and ``target_status`` (each target's last health
status and since when) keep the alert lifecycle. ``log_rotations`` is logrotate's state file:
when each log was last rotated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

HEAD_REVISION = "0009"


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
    # revision 0003: the coordinator and recovery
    sa.Column("progress_at", UTCDateTime()),          # last ctx.progress/checkpoint
    sa.Column("deadline_at", UTCDateTime()),          # started_at + the run's time limit
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("recovery_of", sa.String(36)),          # the interrupted run this one recovers
    sa.Column("host_id", sa.String(100)),             # liveness.host_id(): where pid means it
)
# in the history's order, newest first and ties by run id (revision 0008): pages read in order
sa.Index("ix_wk_runs_started_run", runs.c.started_at.desc(), runs.c.run_id)
sa.Index("ix_wk_runs_task_started_run", runs.c.task, runs.c.started_at.desc(), runs.c.run_id)
# the last result of each task on each target (revision 0009)
sa.Index("ix_wk_runs_task_target_started", runs.c.task, runs.c.target, runs.c.started_at.desc())
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
    # revision 0003
    sa.Column("evaluated_through", UTCDateTime()),    # slots up to here have an outcome
    sa.Column("paused_at", UTCDateTime()),
    sa.Column("paused_by", sa.String(255)),
)

#: one row per (schedule, slot) that came due: claimed exactly once (the primary key), by the
#: scheduling leader, with what became of it
schedule_slots = sa.Table(
    "wk_schedule_slots", metadata,
    sa.Column("schedule", sa.String(200), primary_key=True),
    sa.Column("slot_at", UTCDateTime(), primary_key=True),
    sa.Column("outcome", sa.String(20), nullable=False),     # queued | ran | missed | skipped
    sa.Column("cause", sa.String(40)),                       # scheduler.SlotCause
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("covers", sa.Integer, nullable=False, default=1),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(36)),                  # coordinator id
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("status", sa.String(20)),                      # the runs' overall status
    sa.Column("late_seconds", sa.Float),
    sa.Column("run_ids", sa.JSON, nullable=False, default=list),
)
sa.Index("ix_wk_schedule_slots_recorded", schedule_slots.c.recorded_at)

#: every `wellkept serve` process: who it is and when it last showed signs of life
coordinators = sa.Table(
    "wk_coordinators", metadata,
    sa.Column("coordinator_id", sa.String(36), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host_id", sa.String(100), nullable=False, default=""),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("last_tick_at", UTCDateTime()),
    sa.Column("state", sa.String(20), nullable=False),      # running | stopping | stopped
    sa.Column("stopped_at", UTCDateTime()),
)

#: named leases (the scheduling leader): one holder at a time, until lease_until
leases = sa.Table(
    "wk_leases", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(36), nullable=False),
    sa.Column("holder_host", sa.String(255), nullable=False, default=""),
    sa.Column("holder_pid", sa.Integer, nullable=False, default=0),
    sa.Column("holder_host_id", sa.String(100), nullable=False, default=""),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime(), nullable=False),
)

#: work asked of a running coordinator from outside it (`schedule trigger`, later the API)
requests = sa.Table(
    "wk_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),        # schedule | task
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False, default=""),
    sa.Column("claimed_by", sa.String(36)),
    sa.Column("claimed_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("status", sa.String(20)),
    sa.Column("run_ids", sa.JSON, nullable=False, default=list),
)

#: interrupted runs waiting to be recovered, highest priority first
recovery_queue = sa.Table(
    "wk_recovery_queue", metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("reason", sa.String(40), nullable=False),      # orphaned | shutdown
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("enqueued_at", UTCDateTime(), nullable=False),
    sa.Column("not_before", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", UTCDateTime()),
)

#: every recovery attempt: which run, by which strategy, how it ended
recovery_attempts = sa.Table(
    "wk_recovery_attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),      # the interrupted run
    sa.Column("recovery_run_id", sa.String(36)),             # the run that did the recovery
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(20), nullable=False),    # resume | restart | validate | dead
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("checkpoint_name", sa.String(200)),
    sa.Column("checkpoint_percent", sa.Float),
    sa.Column("interrupted_at", UTCDateTime()),              # when it was found interrupted
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("outcome", sa.String(20)),                     # the recovery run's status
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(255), nullable=False, default=""),
    sa.Column("pid", sa.Integer, nullable=False, default=0),
)
sa.Index("ix_wk_recovery_attempts_run", recovery_attempts.c.run_id)
sa.Index("ix_wk_recovery_attempts_started", recovery_attempts.c.started_at)

#: per emergency trigger: when it last fired (its cooldown survives restarts)
emergency_state = sa.Table(
    "wk_emergency_state", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("last_fired_at", UTCDateTime()),
    sa.Column("fired_count", sa.Integer, nullable=False, default=0),
    sa.Column("last_figures", sa.JSON, nullable=False, default=dict),
    sa.Column("last_run_ids", sa.JSON, nullable=False, default=list),
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
#: runs sent to Celery workers (executor: celery): queued when sent, claimed once (by
#: compare-and-set on status) by the worker that runs it, finished when its record is stored
dispatches = sa.Table(
    "wk_dispatches", metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("task", sa.String(200), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),                # the message's kwargs
    sa.Column("status", sa.String(20), nullable=False),           # queued | claimed | finished
    sa.Column("enqueued_at", UTCDateTime(), nullable=False),
    sa.Column("published_at", UTCDateTime()),                     # last sent to the broker
    sa.Column("publish_count", sa.Integer, nullable=False, default=0),
    sa.Column("claim_token", sa.String(36)),                      # fences the claimer's writes
    sa.Column("claimed_at", UTCDateTime()),
    sa.Column("worker", sa.String(255)),                          # the Celery worker's name
    sa.Column("worker_pid", sa.Integer),
    sa.Column("worker_host_id", sa.String(100)),
    sa.Column("duplicates", sa.Integer, nullable=False, default=0),  # messages ignored
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("outcome", sa.String(20)),                          # the run's status
)
sa.Index("ix_wk_dispatches_status", dispatches.c.status, dispatches.c.enqueued_at)
