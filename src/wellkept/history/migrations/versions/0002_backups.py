"""The backups catalog.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "wk_backups",
        sa.Column("backup_id", sa.String(200), primary_key=True),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("engine", sa.String(50), nullable=False),
        sa.Column("format", sa.String(50), nullable=False),
        sa.Column("storage", sa.Text, nullable=False),
        sa.Column("artifact", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("verify_tier", sa.String(20)),
        sa.Column("verify_status", sa.String(20)),
        sa.Column("verify_message", sa.Text),
        sa.Column("restore_seconds", sa.Float),
        sa.Column("pruned_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_wk_backups_target_created", "wk_backups", ["target", "created_at"])


def downgrade() -> None:
    op.drop_table("wk_backups")
