"""The plan -> (dry run | apply each) loop shared by tasks that act object by object.

Like Ola Hallengren's IndexOptimize, a task first decides what needs doing (with the evidence),
then acts on each object separately: one object failing makes the run a partial failure, and
the others are still done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wellkept.context import RunContext
from wellkept.errors import ConnectorError, Locked, TaskError
from wellkept.records import Action, Metrics, TaskResult
from wellkept.types import RunStatus


def run_actions(ctx: RunContext, actions: list[Action],
                describe: Callable[[Metrics, int], str], nothing: str,
                counters: tuple[str, ...] = ()) -> TaskResult:
    """Dry run: list the actions. Otherwise apply each, summing their metrics.

    ``counters`` are the kind's own metrics of work done (``tables_processed``,
    ``bytes_freed``…), reported as zero when nothing was done: in a dry run (which reports what
    it would do as ``actions_planned``), with nothing to do, or when every action failed. A run
    that did something reports what its actions measured (a counter they did not measure, as
    a whole-file SQLite VACUUM has no tables, is left out rather than shown as 0)."""
    planned = [a.describe() for a in actions]
    zero: Metrics = dict.fromkeys(counters, 0)
    if not actions:
        return TaskResult(message=nothing, metrics={"actions_planned": 0, **zero},
                          details={"actions": []})
    if ctx.dry_run:
        return TaskResult(message=f"would run {len(actions)} statement(s): "
                          + "; ".join(a.statement for a in actions),
                          metrics={"actions_planned": len(actions), **zero},
                          details={"actions": planned})
    totals: Metrics = {}
    errors: list[str] = []
    done = 0
    for i, action in enumerate(actions):
        ctx.check_cancelled()
        ctx.progress(100.0 * i / len(actions), action.object, action.statement)
        ctx.issued(action.statement)
        try:
            measured = action_metrics(ctx, action)
        except Locked:  # the target is in use: the whole run is skipped, not one object
            raise
        except (ConnectorError, TaskError) as exc:
            errors.append(f"{action.object}: {exc}")
            planned[i]["error"] = str(exc)
            continue
        done += 1
        planned[i]["result"] = measured
        for name, value in measured.items():
            totals[name] = totals.get(name, 0) + value
    totals["actions_planned"] = len(actions)
    if not done:
        totals = {**zero, **totals}
    if errors and not done:
        status = RunStatus.FAILED
    elif errors:
        status = RunStatus.PARTIAL_FAILURE
    else:
        status = RunStatus.COMPLETED
    message = describe(totals, done)
    if errors:
        message += f"; {len(errors)} of {len(actions)} failed: {errors[0]}"
    return TaskResult(status=status, message=message, metrics=totals,
                      details={"actions": planned}, errors=errors)


def action_metrics(ctx: RunContext, action: Action) -> Metrics:
    return ctx.connector.apply(action)


def checked_result(message: str, metrics: Metrics, details: dict[str, Any],
                   errors: list[str], what: str = "section") -> TaskResult:
    """The result of a read-only check whose parts fail alone: completed, or a partial
    failure that names the first part that failed."""
    if not errors:
        return TaskResult(message=message, metrics=metrics, details=details)
    return TaskResult(status=RunStatus.PARTIAL_FAILURE,
                      message=f"{message}; {len(errors)} {what}(s) failed: {errors[0]}",
                      metrics=metrics, details=details, errors=errors)
