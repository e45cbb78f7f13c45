"""advise / apply_advice: recommendations from the checks, and applying the chosen ones."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from pydantic import Field

from wellkept.connector import Advisable
from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.records import Metrics, TaskResult
from wellkept.task import Task, TaskParams
from wellkept.tasks._actions import checked_result, run_actions
from wellkept.units import plural


class Advise(Task):
    """Recommendations from the checks, each with its evidence and exact statement.

    Each recommendation has an id, a severity, the evidence, the reason and the statement.

    PostgreSQL: tables to vacuum or analyze, indexes to rebuild or drop (duplicate, unused,
    invalid), sequences near exhaustion, wraparound danger, idle transactions. The rules are
    listed in docs/advice.md. Read-only: apply chosen ones with `apply_advice` (or
    `wellkept advise --apply ID…`).
    """

    kind = "advise"
    requires = (Advisable,)
    default_timeout = timedelta(minutes=10)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Advisable)
        report = ctx.connector.advise()
        advice = report.advice
        counts = Counter(a.severity for a in advice)
        metrics: Metrics = {"recommendations": len(advice), **counts}
        message = (f"{plural(len(advice), 'recommendation')}: "
                   + ", ".join(f"{n} {s}" for s, n in counts.items())) if advice \
            else "no recommendations"
        return checked_result(message, metrics, {"advice": [a.describe() for a in advice]},
                              report.errors, "check")


class ApplyAdviceParams(TaskParams):
    ids: list[str] = Field(description="the advice ids to apply (from `wellkept advise`)")


class ApplyAdvice(Task):
    """Apply chosen recommendations of `advise`, by id.

    The advice is computed afresh and only ids that are still recommended, and that wellkept
    may apply by itself, are run, each as its own statement; an id that is no longer
    recommended or that needs a human is refused. Recorded, locked and dry-runnable like
    every mutating task.
    """

    kind = "apply_advice"
    Params = ApplyAdviceParams
    requires = (Advisable,)
    mutating = True
    default_timeout = timedelta(hours=4)

    def run(self, ctx: RunContext) -> TaskResult:
        assert isinstance(ctx.connector, Advisable)
        p: Any = self.params
        current = {a.id: a for a in ctx.connector.advise().advice}
        missing = [i for i in p.ids if i not in current]
        manual = [i for i in p.ids if i in current and current[i].action is None]
        if missing or manual:
            problems = []
            if missing:
                problems.append("no longer (or never) recommended: " + ", ".join(missing))
            if manual:
                problems.append("needs a human, not applied: " + ", ".join(manual))
            raise TaskFailed("; ".join(problems))
        actions = [current[i].action for i in p.ids]

        def describe(m: Metrics, done: int) -> str:
            return f"applied {plural(done, 'recommendation')}"

        result = run_actions(ctx, [a for a in actions if a is not None], describe,
                             "nothing to apply", ("advice_applied",))
        if not ctx.dry_run:  # a recommendation is applied by its statement, whatever it is
            result.metrics["advice_applied"] = \
                int(result.metrics.get("actions_planned", 0)) - len(result.errors)
        return result
