"""Which strategy recovers an interrupted run (seed 004): a pure function of its progress.

- **validate**: progress above ``validate_above`` (95%) and the task has a ``validate`` hook:
  only check that the work was done; run it again only if it was not.
- **resume**: progress above ``resume_above`` (25%; a task may lower it) and a valid
  checkpoint: continue from the checkpoint (``ctx.resumed_from``).
- **restart**: otherwise (no checkpoint, an invalid one, too little progress, or a task that
  cannot resume): run the job again from the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Strategy(StrEnum):
    RESUME = "resume"
    RESTART = "restart"
    VALIDATE = "validate"


@dataclass(frozen=True)
class Decision:
    strategy: Strategy
    reason: str
    #: the checkpoint resumed from (resume), or handed to the validate hook (validate)
    checkpoint: dict[str, Any] | None = None


def choose(*, progress: float | None, checkpoint: dict[str, Any] | None,
           checkpoint_problem: str | None, resumable: bool, has_validate: bool,
           resume_above: float, validate_above: float,
           allow_validate: bool = True) -> Decision:
    """Pick the strategy. ``checkpoint_problem`` says why the checkpoint cannot be used (None
    when it can); ``allow_validate`` is False for a new run taking over a predecessor, which
    must do its own work rather than vouch for the old one's."""
    done = max(progress or 0.0, float(checkpoint["percent"]) if checkpoint else 0.0)
    usable = checkpoint is not None and checkpoint_problem is None
    if allow_validate and has_validate and done > validate_above:
        return Decision(Strategy.VALIDATE, f"progress {done:g}% is above {validate_above:g}%: "
                        "validating that the work was done",
                        checkpoint if usable else None)
    resume = resume_decision(done, checkpoint, checkpoint_problem, resumable, resume_above)
    return resume or Decision(Strategy.RESTART, _restart_reason(
        done, checkpoint, checkpoint_problem, resumable, resume_above))


def resume_decision(done: float, checkpoint: dict[str, Any] | None,
                    checkpoint_problem: str | None, resumable: bool,
                    resume_above: float) -> Decision | None:
    """RESUME when the checkpoint is usable and far enough along, else None."""
    if not resumable or checkpoint is None or checkpoint_problem is not None:
        return None
    if done > resume_above or resume_above == 0:
        # where the work goes on from (the checkpoint), not how far the run had got
        at = float(checkpoint["percent"])
        further = f" (the run had got to {done:g}%)" if done > at else ""
        return Decision(Strategy.RESUME, f"resuming from checkpoint {checkpoint['name']!r} "
                        f"at {at:g}%{further}", checkpoint)
    return None


def _restart_reason(done: float, checkpoint: dict[str, Any] | None,
                    problem: str | None, resumable: bool, resume_above: float) -> str:
    if not resumable:
        return "the task cannot resume from a checkpoint: restarting"
    if checkpoint is None:
        return "no checkpoint: restarting"
    if problem is not None:
        return f"the checkpoint cannot be used ({problem}): restarting"
    return f"progress {done:g}% is not above {resume_above:g}%: restarting"
