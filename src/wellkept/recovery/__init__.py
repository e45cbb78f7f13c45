"""Recovery of interrupted runs (seed 004): one mechanism, reached three ways.

A run is *interrupted* when its worker died (its lease expired, or its process is gone: it is
``orphaned``) or when a shutdown stopped it at a checkpoint. Recovery continues its work in a
new run, by one of three strategies chosen from the run's progress and last checkpoint
(:mod:`wellkept.recovery.strategy`): resume from the checkpoint, restart, or only validate that
the work was in fact done.

- ``wellkept serve`` finds interrupted runs when it starts and every ``reap_every`` after, queues
  them by priority, and recovers them (``Recoverer``).
- ``wellkept recover [--dry-run]`` does the same once, in the foreground.
- A new run of the same task on the same target (``wellkept run``, the next scheduled slot)
  takes over an interrupted predecessor it finds, through the same strategy choice and the
  same attempt record (:func:`wellkept.recovery.continuation.prepare`).

Attempts per job are capped (``recovery.max_attempts``); past the cap the run ends ``dead``.
Every attempt is a row of ``wk_recovery_attempts``.
"""

from wellkept.recovery.recoverer import Recoverer, RecoveryItem, RecoveryReport
from wellkept.recovery.spec import RecoverySpec
from wellkept.recovery.strategy import Decision, Strategy, choose

__all__ = ["Decision", "Recoverer", "RecoveryItem", "RecoveryReport", "RecoverySpec",
           "Strategy", "choose"]
