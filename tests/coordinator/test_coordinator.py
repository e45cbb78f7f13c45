"""The coordinator in process, on an injected clock: downtime, DST, pause, windows, overlap,
emergencies, concurrency, retries and timeouts. Nothing sleeps for a schedule's time."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.coordinator.helpers import coordinator, ledger, slots, tick_until_idle, write
from tests.helpers import run_cli
from wellkept.clock import ManualClock
from wellkept.history import coordination
from wellkept.records import RunRecord
from wellkept.types import RunStatus, Trigger


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def schedule_runs(coord, task="t"):  # type: ignore[no-untyped-def]
    return sorted((r for r in coord.store.list_runs(limit=1000, task=task)),
                  key=lambda r: r.started_at)


def test_downtime_of_three_slots_gives_one_coalesced_run_and_two_missed(
        plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [t]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 0, 30))
    first = coordinator(cfg, clock)
    tick_until_idle(first, clock, at(2026, 11, 2, 9, 0, 30))   # first sight: nothing due
    first.shutdown()
    # down from 09:00:30 until 12:10: the 10:00, 11:00 and 12:00 slots came and went
    second = coordinator(cfg, clock)
    tick_until_idle(second, clock, at(2026, 11, 2, 12, 10))
    second.shutdown()
    assert slots(second, "hourly") == [("10:00", "missed", "coalesced"),
                                       ("11:00", "missed", "coalesced"), ("12:00", "ran", None)]
    (run,) = schedule_runs(second)
    assert run.trigger is Trigger.SCHEDULE and run.status is RunStatus.COMPLETED
    assert run.scheduled_for == at(2026, 11, 2, 12) and run.schedule == "hourly"
    assert len(ledger(plugin_dir)) == 1  # the work itself happened once
    missed = [s for s in _slot_rows(second) if s["outcome"] == "missed"]
    assert all("coalesced into the run of 2026-11-02T12:00:00.000Z" in s["detail"]
               for s in missed)
    # the missed slots raise one missed_schedule alert, which the next slot resolves
    from wellkept.alerts import AlertCenter

    (alert,) = AlertCenter(None, second.store).firing()
    assert (alert["name"], alert["target"], alert["severity"], alert["value"]) == (
        "missed_schedule", "hourly", "warning", 2.0)
    assert "missed 2 slots, the last at 2026-11-02T11:00:00" in alert["message"]
    third = coordinator(cfg, clock)
    tick_until_idle(third, clock, at(2026, 11, 2, 13, 0, 30))
    third.shutdown()
    assert AlertCenter(None, third.store).firing() == []
    # and the metrics count them (CONTRACT §5), with the scheduler's last tick
    from prometheus_client import generate_latest

    from wellkept.metrics.collector import registry_for

    text = generate_latest(registry_for(third.settings, third.store)).decode()
    assert 'wellkept_task_missed_runs_total{schedule="hourly"} 2.0' in text
    assert "wellkept_scheduler_last_tick_timestamp_seconds " in text
    assert "wellkept_recovery_queue_depth 0.0" in text


def _slot_rows(coord):  # type: ignore[no-untyped-def]
    from wellkept.history import schedules

    return schedules.list_slots(coord.store, limit=100)


@pytest.mark.parametrize("start, end, expected", [
    # fall back: 02:30 Berlin happens twice on 2026-10-25; it runs once (CEST)
    (at(2026, 10, 24, 22), at(2026, 10, 25, 5), [at(2026, 10, 25, 0, 30)]),
    # spring forward: 02:30 does not exist on 2026-03-29; it runs once, at 03:00 CEST
    (at(2026, 3, 28, 22), at(2026, 3, 29, 5), [at(2026, 3, 29, 1, 0)]),
])
def test_a_schedule_fires_once_across_a_dst_change(plugin_dir: Path, start: datetime,
                                                   end: datetime,
                                                   expected: list[datetime]) -> None:
    cfg = write(plugin_dir, """\
        timezone: Europe/Berlin
        tasks: {t: {kind: tick}}
        schedules: {nightly: {cron: "30 2 * * *", tasks: [t]}}
        """)
    clock = ManualClock(start)
    coord = coordinator(cfg, clock)
    moment = start
    while moment <= end:  # a tick every 5 minutes of schedule time, all night
        tick_until_idle(coord, clock, moment)
        moment += timedelta(minutes=5)
    coord.shutdown()
    assert [r.scheduled_for for r in schedule_runs(coord)] == expected
    assert len(ledger(plugin_dir)) == 1


def test_pause_then_resume_through_the_cli(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [t]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 30))
    coord = coordinator(cfg, clock)
    tick_until_idle(coord, clock, at(2026, 11, 2, 9, 30))
    paused = run_cli("-c", str(cfg), "schedule", "pause", "hourly", "-o", "json")
    assert paused.returncode == 0, paused.stderr
    assert json.loads(paused.stdout) == {"schedule": "hourly", "paused": True, "changed": True}
    listed = json.loads(run_cli("-c", str(cfg), "schedule", "list", "-o", "json").stdout)
    assert listed[0]["paused"] is True and listed[0]["paused_by"]
    assert listed[0]["grace"] == "1h"   # as the config writes durations, not "1:00:00"
    table = run_cli("-c", str(cfg), "schedule", "list").stdout
    next_slot = listed[0]["next_fire_at"]   # the JSON keeps the next (skipped) slot's time
    assert next_slot and next_slot[:16] not in table and next_slot[:16].replace("T", " ") \
        not in table and table.count("paused") >= 2   # the table says paused instead
    for hour in (10, 11, 12):
        tick_until_idle(coord, clock, at(2026, 11, 2, hour, 0, 5))
    assert schedule_runs(coord) == [] and ledger(plugin_dir) == []  # no runs while paused
    assert run_cli("-c", str(cfg), "schedule", "resume", "hourly").returncode == 0
    tick_until_idle(coord, clock, at(2026, 11, 2, 12, 30))   # resuming catches nothing up
    tick_until_idle(coord, clock, at(2026, 11, 2, 13, 0, 5))
    coord.shutdown()
    assert slots(coord, "hourly") == [("10:00", "skipped", "paused"),
                                      ("11:00", "skipped", "paused"),
                                      ("12:00", "skipped", "paused"), ("13:00", "ran", None)]
    assert [r.scheduled_for for r in schedule_runs(coord)] == [at(2026, 11, 2, 13)]
    unknown = run_cli("-c", str(cfg), "schedule", "pause", "nope")
    assert unknown.returncode == 2 and "unknown schedule 'nope'" in unknown.stderr


def test_a_slot_runs_each_of_its_tasks_once(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {a: {kind: tick}, b: {kind: tick}, c: {kind: tick}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [a, b, c]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 0, 30))
    coord = coordinator(cfg, clock)
    tick_until_idle(coord, clock, at(2026, 11, 2, 9, 0, 30))
    tick_until_idle(coord, clock, at(2026, 11, 2, 10, 0, 5))
    coord.shutdown()
    runs = sorted(coord.store.list_runs(limit=1000), key=lambda r: r.started_at)
    assert [(r.task, r.schedule, r.scheduled_for) for r in runs] == [
        (task, "hourly", at(2026, 11, 2, 10)) for task in ("a", "b", "c")]
    assert len(ledger(plugin_dir)) == 3


def test_no_run_starts_outside_the_window(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [t], window: "01:00-03:00"}}
        """)
    clock = ManualClock(at(2026, 11, 2, 0, 30))
    coord = coordinator(cfg, clock)
    for moment in (at(2026, 11, 2, 0, 30), at(2026, 11, 2, 1, 0, 1), at(2026, 11, 2, 2, 0, 1),
                   at(2026, 11, 2, 3, 0, 1), at(2026, 11, 2, 4, 0, 1)):
        tick_until_idle(coord, clock, moment)
    coord.shutdown()
    assert slots(coord, "hourly") == [("01:00", "ran", None), ("02:00", "ran", None),
                                      ("03:00", "skipped", "outside_window"),
                                      ("04:00", "skipped", "outside_window")]


def test_an_overlapping_slot_is_skipped_while_the_last_run_goes_on(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {t: {kind: tick, hold: 2}}
        schedules: {minutely: {cron: "* * * * *", tasks: [t]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 0, 30))
    coord = coordinator(cfg, clock)
    coord.tick()
    clock.set(at(2026, 11, 2, 9, 1, 1))
    coord.tick()                       # 09:01 starts, holding for 2 s
    time.sleep(0.5)
    clock.set(at(2026, 11, 2, 9, 2, 1))
    coord.tick()                       # 09:02 comes while 09:01 still runs
    assert coord.pool.wait_idle(30)
    coord.shutdown()
    assert slots(coord, "minutely") == [("09:01", "ran", None), ("09:02", "skipped", "overlap")]


def test_max_concurrent_holds_and_emergencies_go_first(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        coordinator: {max_concurrent: 1, heartbeat: 1s, leader_lease: 5s}
        tasks:
          a: {kind: tick, hold: 1}
          b: {kind: tick, hold: 0.2}
          c: {kind: tick, hold: 0.2}
          fix: {kind: tick}
        schedules:
          sa: {cron: "0 * * * *", tasks: [a]}
          sb: {cron: "0 * * * *", tasks: [b]}
          sc: {cron: "0 * * * *", tasks: [c]}
        emergency:
          disk-full: {when: "disk_percent > 90", run: [fix], cooldown: 1h, check_every: 1ms}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 30))
    coord = coordinator(cfg, clock)
    coord.tick()
    clock.set(at(2026, 11, 2, 10, 0, 1))
    coord.tick()                                  # a runs; b and c wait (max_concurrent 1)
    time.sleep(0.3)
    _record_health(coord, disk=93.5)
    coord.tick()                                  # the emergency goes ahead of b and c
    assert coord.pool.wait_idle(30)
    again = coord.tick()                          # within its cooldown: it does not fire again
    assert again is not None and coord.pool.wait_idle(10)
    coord.shutdown()
    runs = sorted(coord.store.list_runs(limit=100), key=lambda r: r.started_at)
    runs = [r for r in runs if r.kind == "tick"]
    assert [r.task for r in runs][:2] == ["a", "fix"] and len(runs) == 4
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
    fix = runs[1]
    assert fix.trigger is Trigger.EMERGENCY
    assert fix.details["emergency"]["figures"] == {"disk_percent": 93.5}
    assert fix.details["emergency"]["condition"] == "disk_percent > 90"
    # the cooldown is in the store: another coordinator does not fire it either
    other = coordinator(cfg, clock)
    other.tick()
    assert other.pool.wait_idle(10)
    other.shutdown()
    assert len([r for r in coord.store.list_runs(limit=100) if r.task == "fix"]) == 1
    assert coordination.emergency_states(coord.store)["disk-full"]["fired_count"] == 1


def _record_health(coord, disk: float) -> None:  # type: ignore[no-untyped-def]
    """What the health task (issue 7) records: a run of kind health, CONTRACT §3 details."""
    import uuid

    now = datetime.now(UTC)
    record = RunRecord(run_id=str(uuid.uuid4()), task="health", kind="health", target="host",
                       status=RunStatus.RUNNING, dry_run=False, trigger=Trigger.SCHEDULE,
                       started_at=now)
    coord.store.start_run(record, {})
    done = RunRecord(**{**record.__dict__, "status": RunStatus.COMPLETED, "finished_at": now,
                        "details": {"status": "degraded", "score": 60,
                                    "host": {"cpu_percent": 5.0, "memory_percent": 30.0,
                                             "disk": [{"path": "/", "percent": disk}]}}})
    coord.store.finish_run(done)


def test_stale_health_figures_never_fire(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {fix: {kind: tick}}
        emergency:
          disk-full: {when: "disk_percent > 90", run: [fix], max_age: 1s, check_every: 1ms}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 30))
    coord = coordinator(cfg, clock)
    _record_health(coord, disk=99.0)
    time.sleep(1.2)
    coord.tick()
    assert coord.pool.wait_idle(10)
    coord.shutdown()
    assert ledger(plugin_dir) == []


def test_transient_errors_are_retried_with_exponential_backoff(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks:
          flaky: {kind: flaky, fail_times: 2, retries: 3, retry_backoff: 200ms}
          hopeless: {kind: flaky, fail_times: 9, retries: 1, retry_backoff: 10ms}
        """)
    from wellkept.config import load_config
    from wellkept.engine import Engine

    engine = Engine(load_config(cfg))
    ok, bad = engine.run(engine.resolve(["flaky", "hopeless"])).results
    assert ok.status is RunStatus.COMPLETED and ok.message == "succeeded on try 3"
    retries = ok.details["retries"]
    assert [r["wait_seconds"] for r in retries] == [0.2, 0.4]      # doubled each time
    assert retries[0]["error"] == "not yet (try 1)"
    assert bad.status is RunStatus.FAILED and len(bad.details["retries"]) == 1
    times = [row[5] for row in ledger(plugin_dir) if row[1] == ok.run_id]
    assert len(times) == 3 and times[2] - times[1] >= 0.39 and times[1] - times[0] >= 0.19


def test_the_per_task_timeout_holds_in_the_coordinator(plugin_dir: Path) -> None:
    cfg = write(plugin_dir, """\
        tasks: {slow: {kind: tick, hold: 30, timeout: 500ms}}
        schedules: {hourly: {cron: "0 * * * *", tasks: [slow]}}
        """)
    clock = ManualClock(at(2026, 11, 2, 9, 30))
    coord = coordinator(cfg, clock)
    coord.tick()
    t0 = time.monotonic()
    tick_until_idle(coord, clock, at(2026, 11, 2, 10, 0, 1))
    coord.shutdown()
    (run,) = schedule_runs(coord, "slow")
    assert run.status is RunStatus.FAILED and "timed out after 0.5s" in run.message
    assert time.monotonic() - t0 < 10


def test_runs_can_be_queued_in_process_and_their_ids_are_known_at_once(
        plugin_dir: Path) -> None:
    """The seam the HTTP API will use: run now, answer with the run id before it starts."""
    cfg = write(plugin_dir, "tasks: {t: {kind: tick}, u: {kind: tick}}\n")
    clock = ManualClock(at(2026, 11, 2, 9, 30))
    coord = coordinator(cfg, clock)
    coord.tick()
    ids = coord.run_now(["t", "u"])
    urgent = coord.run_now(["u"], emergency=True)
    assert len(ids) == 2 and len(urgent) == 1
    assert coord.pool.wait_idle(30)
    coord.shutdown()
    records = {r.run_id: r for r in coord.store.list_runs(limit=10)}
    assert [records[i].trigger for i in ids] == [Trigger.API, Trigger.API]
    assert records[urgent[0]].trigger is Trigger.EMERGENCY
    assert all(r.status is RunStatus.COMPLETED for r in records.values())
