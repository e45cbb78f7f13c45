"""The inline executor: each run executes in the calling thread, in this process."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wellkept.engine import Engine, RunRequest
    from wellkept.records import RunRecord
    from wellkept.types import Trigger


class InlineExecutor:
    """``executor: {kind: inline}`` (the default): the coordinator's worker threads run the
    engine themselves; a shutdown stops them through ``Engine.live_runs``."""

    kind = "inline"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self) -> None:
        """Nothing to reach: runs execute here."""

    def run(self, request: RunRequest, *, trigger: Trigger,
            dry_run: bool = False) -> RunRecord:
        return self.engine.run_one(request, trigger=trigger, dry_run=dry_run)

    def upkeep(self, now: datetime) -> None:
        """Nothing to look after."""

    def close(self) -> None:
        """The coordinator stops inline runs itself (at their next checkpoint)."""

    def snapshot(self) -> dict[str, Any]:
        return {"kind": self.kind}
