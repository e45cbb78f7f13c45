"""When an earlier run still marked 'running' counts as dead (orphaned) for the run that
now holds its target lock: never while its process is alive, because a live run may be
waiting for that very lock (two runs of a task queued behind a third, taken in either order)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psutil

from wellkept.config_coordinator import RecoverySettings
from wellkept.history.recovery_log import RunState
from wellkept.liveness import host_id
from wellkept.recovery.continuation import _dead_because

NOW = datetime.now(UTC)
MUTATING: Any = SimpleNamespace(task=SimpleNamespace(mutating=True))
READING: Any = SimpleNamespace(task=SimpleNamespace(mutating=False))


def state(**kw: Any) -> RunState:
    started = datetime.fromtimestamp(psutil.Process().create_time(), UTC)
    base = RunState(run_id="r1", task="purge", kind="cleanup", target="app", status="running",
                    trigger="manual", dry_run=False, attempt=1, host="here", host_id=host_id(),
                    pid=os.getpid(), started_at=started, finished_at=None, heartbeat_at=NOW,
                    lease_until=NOW + timedelta(seconds=60), deadline_at=None,
                    progress_percent=None, progress_step=None, progress_at=None, priority=0,
                    params={}, schedule=None, scheduled_for=None, recovery_of=None)
    return replace(base, **kw)


def dead(run: Any, prev: RunState) -> str | None:
    return _dead_because(run, prev, RecoverySettings(), NOW)


def test_a_live_run_waiting_for_the_lock_is_not_orphaned() -> None:
    assert dead(MUTATING, state()) is None  # alive on this host, no progress yet
    assert dead(MUTATING, state(progress_at=NOW, progress_percent=40)) is None  # alive


def test_a_gone_process_is_dead() -> None:
    gone = state(pid=2 ** 22 + 12345)
    assert "is gone" in (dead(MUTATING, gone) or "")
    assert "is gone" in (dead(READING, gone) or "")


def test_another_machines_run_counts_as_dead_once_it_had_begun_or_its_lease_ran_out() -> None:
    remote = state(host_id="another-machine", host="there")
    assert dead(MUTATING, remote) is None  # may be waiting for the lock: only its lease tells
    begun = replace(remote, progress_at=NOW - timedelta(seconds=5), progress_percent=10)
    assert "target lock" in (dead(MUTATING, begun) or "")
    assert dead(READING, begun) is None  # a reading task holds no lock: that proves nothing
    expired = replace(remote, lease_until=NOW - timedelta(seconds=1))
    assert dead(MUTATING, expired) == "its lease expired"
