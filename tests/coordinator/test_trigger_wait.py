"""`wellkept schedule trigger --wait` when the coordinator it queued for stops: the wait ends
with an error instead of lasting for ever. A coordinator row that this test registers and then
stops renewing stands in for a coordinator that died on another machine."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import wait_for, wellkept_bin
from wellkept.config import load_config
from wellkept.history import coordination
from wellkept.history.store import HistoryStore


@pytest.mark.parametrize("claimed", [False, True])
def test_the_wait_ends_when_every_coordinator_has_stopped(
        claimed: bool, app_db: Path, write_config: Callable[[str], Path]) -> None:
    config = write_config(f"""
        state: sqlite:///state.db
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          app-stats: {{kind: stats, target: app}}
        schedules:
          yearly: {{cron: "0 0 1 1 *", tasks: [app-stats]}}
        coordinator: {{heartbeat: 500ms, leader_lease: 2s}}
        """)
    store = HistoryStore(load_config(config).state)
    try:
        store.prepare()
        gone = f"gone-{uuid.uuid4().hex[:8]}"
        coordination.register(store, gone, datetime.now(UTC), "test")
        queued = threading.Event()

        def beat() -> None:  # alive until the request is queued (and taken), then it dies
            while not queued.wait(0.3):
                coordination.heartbeat(store, gone, datetime.now(UTC))

        beating = threading.Thread(target=beat, daemon=True)
        beating.start()
        waiter = subprocess.Popen(
            [wellkept_bin(), "-c", str(config), "schedule", "trigger", "yearly", "--wait"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: coordination.get_request(store, 1) is not None, 60)
            if claimed:
                assert [r["id"] for r in coordination.claim_requests(
                    store, gone, datetime.now(UTC))] == [1]
        finally:
            queued.set()
            beating.join()
        t0 = time.monotonic()
        out, err = waiter.communicate(timeout=60)
        took = time.monotonic() - t0
        assert waiter.returncode == 1, out + err
        # stale after the 2 s lease, then gone for another lease, looked at every 2 s
        assert took < 30, took
        request = coordination.get_request(store, 1)
        assert request is not None
        if claimed:
            assert "the coordinator that took request 1 stopped before it ended" in err
            assert request["finished_at"] is None   # the next coordinator orphans it
        else:
            assert ("no coordinator is running any more; request 1 was withdrawn before any "
                    "run started") in err
            assert request["status"] == "withdrawn" and request["claimed_by"] is None
            # and a coordinator started later does not take it
            assert coordination.claim_requests(store, "later", datetime.now(UTC)) == []
        assert not store.list_runs()                # nothing ran behind the user's back
    finally:
        store.close()
