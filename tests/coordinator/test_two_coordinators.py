"""Two coordinators on one PostgreSQL state store: one schedules, each slot runs once, and
when the leader is killed the other takes over without running a slot twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.coordinator.helpers import Serve, ledger, store_of, write
from tests.helpers import wait_for
from wellkept.history import schedules


def test_two_coordinators_run_each_slot_once(plugin_dir: Path, postgres_db: str) -> None:
    cfg = write(plugin_dir, f"""\
        state: "{postgres_db}"
        coordinator: {{heartbeat: 1s, leader_lease: 3s, reap_every: 1s}}
        tasks: {{t: {{kind: tick}}}}
        schedules: {{every-second: {{cron: "* * * * * *", tasks: [t]}}}}
        """)
    store = store_of(cfg)
    a = Serve(cfg, "a")
    a.wait_leader(store)
    b = Serve(cfg, "b")
    assert wait_for(lambda: len(ledger(plugin_dir)) >= 6, 30), a.text() + b.text()
    by_pid = Counter(row[4] for row in ledger(plugin_dir))
    assert set(by_pid) == {a.pid}, by_pid            # only the leader schedules
    a.kill()                                         # kill -9 the leader
    before = len(ledger(plugin_dir))
    assert wait_for(lambda: Counter(row[4] for row in ledger(plugin_dir))[b.pid] >= 5, 30), \
        b.text()
    assert b.stop() == 0, b.text()

    runs = [r for r in store.list_runs(limit=10_000) if r.task == "t"]
    assert len(runs) == len(ledger(plugin_dir)) > before  # each run did its work once
    per_slot = Counter(r.scheduled_for for r in runs)
    assert per_slot and max(per_slot.values()) == 1, per_slot   # no slot ran twice
    rows = schedules.list_slots(store, schedule="every-second", limit=10_000)
    ran = {r["slot_at"] for r in rows if r["outcome"] == "ran"}
    assert ran == set(per_slot)
    assert len({r["slot_at"] for r in rows}) == len(rows)
    # the handover lost no time: the leader was found dead by pid, not by waiting out its
    # lease, and the slots of the gap were coalesced into the standby's first run
    pids = [r.pid for r in sorted(runs, key=lambda r: r.scheduled_for)]
    assert pids.index(b.pid) == len(pids) - pids[::-1].count(b.pid)
    assert all(r["outcome"] in ("ran", "missed") for r in rows)
