"""sessions: delete expired Django sessions, in batches (a preset of cleanup)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.durations import Duration
from wellkept.tasks.cleanup import Cleanup, CleanupParams


class SessionsParams(CleanupParams):
    table: str = Field("django_session", description="the sessions table")
    date_column: str | None = Field("expire_date", description="when each session expires")
    retention: Duration = Field(timedelta(0), description=(
        "keep sessions this long past their expiry (0s: delete as soon as they expire)"))
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="rows per batch")


class Sessions(Cleanup):
    """Delete expired Django sessions in short batches.

    `clearsessions` does this in one unbounded DELETE. This is a preset of `cleanup` for
    `django_session.expire_date`: rows whose expiry has passed (plus
    `retention`) are deleted in keyset batches of `batch_size`, one short transaction each, so
    the table is never locked for long. Works on every engine `cleanup` supports. A dry run
    reports the exact number of expired sessions and deletes nothing.
    """

    kind = "sessions"
    Params = SessionsParams
