"""The coordinator and recovery: schedule slots, coordinators, leases, requests, the recovery
queue and its attempts, emergency trigger state; lease and progress columns on runs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("wk_runs") as batch:
        batch.add_column(sa.Column("progress_at", TS))
        batch.add_column(sa.Column("deadline_at", TS))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("recovery_of", sa.String(36)))
        batch.add_column(sa.Column("host_id", sa.String(100)))
    with op.batch_alter_table("wk_schedule_state") as batch:
        batch.add_column(sa.Column("evaluated_through", TS))
        batch.add_column(sa.Column("paused_at", TS))
        batch.add_column(sa.Column("paused_by", sa.String(255)))
    op.create_table(
        "wk_schedule_slots",
        sa.Column("schedule", sa.String(200), primary_key=True),
        sa.Column("slot_at", TS, primary_key=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("cause", sa.String(40)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("covers", sa.Integer, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(36)),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(20)),
        sa.Column("late_seconds", sa.Float),
        sa.Column("run_ids", sa.JSON, nullable=False),
    )
    op.create_index("ix_wk_schedule_slots_recorded", "wk_schedule_slots", ["recorded_at"])
    op.create_table(
        "wk_coordinators",
        sa.Column("coordinator_id", sa.String(36), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("last_tick_at", TS),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("stopped_at", TS),
    )
    op.create_table(
        "wk_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(36), nullable=False),
        sa.Column("holder_host", sa.String(255), nullable=False),
        sa.Column("holder_pid", sa.Integer, nullable=False),
        sa.Column("holder_host_id", sa.String(100), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=False),
    )
    op.create_table(
        "wk_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("claimed_by", sa.String(36)),
        sa.Column("claimed_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(20)),
        sa.Column("run_ids", sa.JSON, nullable=False),
    )
    op.create_table(
        "wk_recovery_queue",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("enqueued_at", TS, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_at", TS),
    )
    op.create_table(
        "wk_recovery_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("recovery_run_id", sa.String(36)),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("checkpoint_name", sa.String(200)),
        sa.Column("checkpoint_percent", sa.Float),
        sa.Column("interrupted_at", TS),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(20)),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    op.create_index("ix_wk_recovery_attempts_run", "wk_recovery_attempts", ["run_id"])
    op.create_index("ix_wk_recovery_attempts_started", "wk_recovery_attempts", ["started_at"])
    op.create_table(
        "wk_emergency_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("last_fired_at", TS),
        sa.Column("fired_count", sa.Integer, nullable=False),
        sa.Column("last_figures", sa.JSON, nullable=False),
        sa.Column("last_run_ids", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("wk_emergency_state", "wk_recovery_attempts", "wk_recovery_queue",
                  "wk_requests", "wk_leases", "wk_coordinators", "wk_schedule_slots"):
        op.drop_table(table)
    with op.batch_alter_table("wk_schedule_state") as batch:
        for column in ("paused_by", "paused_at", "evaluated_through"):
            batch.drop_column(column)
    with op.batch_alter_table("wk_runs") as batch:
        for column in ("host_id", "recovery_of", "priority", "deadline_at", "progress_at"):
            batch.drop_column(column)
