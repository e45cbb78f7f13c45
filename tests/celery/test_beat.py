"""A team's own beat: `beat_schedule()` from the config, and two beats firing one slot once."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from tests.celery.conftest import WriteCelery
from tests.celery.workers import Worker
from tests.coordinator.helpers import ledger
from tests.helpers import wait_for
from wellkept.config import load_config
from wellkept.errors import ConfigError
from wellkept.history import schedules
from wellkept.history.store import HistoryStore
from wellkept.integrations.celery import TASK_FIRE_SCHEDULE, beat_schedule, create_app


def _settings(tmp_path: Path, schedules_yaml: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "wellkept.yml"
    path.write_text(textwrap.dedent("""\
        state: postgresql://wellkept@db/wellkept
        timezone: Europe/Berlin
        executor: {kind: celery, broker: "redis://127.0.0.1:6379/5", queue: maint}
        coordinator: {reap_every: 20s}
        tasks: {s: {kind: stats, target: host}}
        """) + textwrap.dedent(schedules_yaml), encoding="utf-8")
    return load_config(path)


def test_beat_schedule_is_built_from_the_config(tmp_path: Path) -> None:
    settings = _settings(tmp_path, """\
        schedules:
          nightly: {cron: "30 2 * * 1-5", tasks: [s], grace: 30min}
          tokyo: {cron: "@daily", tasks: [s], timezone: Asia/Tokyo}
          paused: {cron: "0 3 * * *", tasks: [s], enabled: false}
        """)
    beat = beat_schedule(settings)
    assert sorted(beat) == ["wellkept:nightly", "wellkept:recover", "wellkept:tokyo"]
    nightly = beat["wellkept:nightly"]
    assert (nightly["task"], nightly["args"]) == (TASK_FIRE_SCHEDULE, ("nightly",))
    assert nightly["options"] == {"queue": "maint", "expires": 1800.0}
    cron = nightly["schedule"]
    assert (cron.minute, cron.hour, cron.day_of_week) == ({30}, {2}, {1, 2, 3, 4, 5})
    tokyo = beat["wellkept:tokyo"]["schedule"]
    assert tokyo.nowfun().utcoffset() == timedelta(hours=9)   # its own zone
    assert (tokyo.minute, tokyo.hour) == ({0}, {0})
    assert beat["wellkept:recover"]["schedule"] == timedelta(seconds=20)
    app = create_app(settings)
    app.conf.beat_schedule = beat                               # what a team writes
    assert app.conf.beat_schedule["wellkept:nightly"]["task"] == "wellkept.fire_schedule"


def test_beat_cannot_express_a_sub_minute_cron(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 'schedules: {fast: {cron: "*/10 * * * * *", tasks: [s]}}\n')
    with pytest.raises(ConfigError, match=r"schedules.fast.cron: .* fires within a minute"):
        beat_schedule(settings)


def test_two_beats_fire_a_slot_once(celery_config: WriteCelery, queue: str) -> None:
    cfg = celery_config("""\
        tasks: {t: {kind: tick}}
        schedules: {minutely: {cron: "* * * * *", tasks: [t]}}
        """)
    worker = Worker(cfg, "w", concurrency=2).wait_ready()
    app = create_app(load_config(cfg))
    for _ in range(2):                       # two beats, the same tick
        app.send_task(TASK_FIRE_SCHEDULE, args=("minutely",), queue=queue)
    store = HistoryStore(load_config(cfg).state)
    assert wait_for(lambda: "duplicate beat ignored" in worker.text(), 60), worker.text()

    def slot_done() -> bool:
        rows = schedules.list_slots(store, schedule="minutely")
        return len(rows) == 1 and rows[0]["finished_at"] is not None

    assert wait_for(slot_done, 60), worker.text()
    (slot,) = schedules.list_slots(store, schedule="minutely")
    assert (slot["outcome"], slot["status"], len(slot["run_ids"])) == ("ran", "completed", 1)
    assert [row[1] for row in ledger(cfg.parent)] == slot["run_ids"]   # one run
