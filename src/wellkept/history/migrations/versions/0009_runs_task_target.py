"""Runs: an index on (task, target, started_at), so that the last result of each task on each
of its targets (``wellkept status``, ``GET /maintenance/status``) is one short index lookup per
pair, and the pairs themselves are read from the index alone.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index("ix_wk_runs_task_target_started", "wk_runs",
                    ["task", "target", sa.text("started_at DESC")])


def downgrade() -> None:
    op.drop_index("ix_wk_runs_task_target_started", "wk_runs")
