"""The strategy choice (seed 004) as a pure function, and the reason it gives."""

from __future__ import annotations

from wellkept.recovery.strategy import Strategy, choose

POINT = {"name": "items", "percent": 33.5, "data": {"next": 20}}


def pick(progress: float, **kw: object):  # type: ignore[no-untyped-def]
    args = {"checkpoint": POINT, "checkpoint_problem": None, "resumable": True,
            "has_validate": True, "resume_above": 25.0, "validate_above": 95.0, **kw}
    return choose(progress=progress, **args)  # type: ignore[arg-type]


def test_the_three_strategies() -> None:
    assert pick(97).strategy is Strategy.VALIDATE
    assert pick(48).strategy is Strategy.RESUME
    assert pick(10, checkpoint={**POINT, "percent": 10}).strategy is Strategy.RESTART
    assert pick(48, checkpoint_problem="stale").strategy is Strategy.RESTART
    assert pick(48, checkpoint=None).strategy is Strategy.RESTART


def test_a_resume_names_where_it_resumes_from_not_how_far_the_run_had_got() -> None:
    """Killed at 48%, last checkpoint at 33.5%: the work from 33.5% is done again, and the
    reason must say so (it said 'at 48%')."""
    decision = pick(48)
    assert decision.checkpoint is POINT
    assert decision.reason == "resuming from checkpoint 'items' at 33.5% (the run had got to 48%)"
    assert pick(33.5).reason == "resuming from checkpoint 'items' at 33.5%"
