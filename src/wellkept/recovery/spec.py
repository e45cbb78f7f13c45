"""What a run carries when it recovers an interrupted one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wellkept.history.recovery_log import RunState


@dataclass(frozen=True)
class RecoverySpec:
    """Handed to the engine with a recovery run: the run it recovers, and why."""

    of: RunState
    #: why it is being recovered: orphaned (its worker died), shutdown, failed (a recovery
    #: that failed and is tried again)
    reason: str
    #: who claimed its queue entry (a coordinator id, or ``cli:HOST:PID``)
    claimer: str
    #: the interrupted run's last sign of life (for the mean recovery time)
    interrupted_at: datetime

    @property
    def attempt(self) -> int:
        """The recovery run's attempt number: one more than the run it recovers, except after
        a clean shutdown, which does not count against ``recovery.max_attempts``."""
        return self.of.attempt + (0 if self.reason == "shutdown" else 1)
