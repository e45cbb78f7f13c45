"""Runs sent to Celery workers: one row per dispatched run, claimed once by the worker that
runs it.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wk_dispatches",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("enqueued_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.Column("publish_count", sa.Integer, nullable=False),
        sa.Column("claim_token", sa.String(36)),
        sa.Column("claimed_at", TS),
        sa.Column("worker", sa.String(255)),
        sa.Column("worker_pid", sa.Integer),
        sa.Column("worker_host_id", sa.String(100)),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(20)),
    )
    op.create_index("ix_wk_dispatches_status", "wk_dispatches", ["status", "enqueued_at"])


def downgrade() -> None:
    op.drop_table("wk_dispatches")
