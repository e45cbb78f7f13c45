"""views: refresh materialized views."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from wellkept.connector import ViewRefreshable
from wellkept.context import RunContext
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import run_actions
from wellkept.units import plural


class ViewsParams(TaskParams):
    views: list[str] = Field([], description="refresh only these (schema.view); default: all")
    concurrently: bool = Field(True, description=(
        "use CONCURRENTLY wherever it is legal (readers are not blocked)"))


class Views(Task):
    """Refresh materialized views, concurrently wherever that is legal.

    PostgreSQL: REFRESH MATERIALIZED VIEW CONCURRENTLY when the view is already populated and
    has a valid unique index on plain columns with no WHERE clause; readers go on meanwhile
    (it takes an EXCLUSIVE lock that still allows SELECT). Otherwise the plain REFRESH, which
    takes an ACCESS EXCLUSIVE lock and blocks readers until it ends; the lock wait is bounded by
    the target's lock_timeout (and retried twice with backoff), and the refresh itself by the
    target's statement_timeout, since a plain refresh blocks readers while it runs. The run's
    details say, per view, which form was used and why.
    Beware NULLs in the unique key: a concurrent refresh then rewrites those rows every time;
    where the view's statistics show NULLs in a key column, the details warn about it.
    A replica is skipped.
    """

    kind = "views"
    Params = ViewsParams
    requires = (ViewRefreshable,)
    mutating = True
    default_timeout = timedelta(hours=2)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, ViewRefreshable)
        actions = ctx.connector.plan_views(self.params)

        def describe(m: Metrics, done: int) -> str:
            concurrent = int(m.get("concurrent_refreshes", 0))
            return (f"refreshed {plural(done, 'view')} "
                    f"({concurrent} concurrently, {done - concurrent} plain)")

        return run_actions(ctx, actions, describe, "no materialized views",
                           ("views_processed",))
