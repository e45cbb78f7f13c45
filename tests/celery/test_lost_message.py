"""A message waiting in Redis when Redis dies without persistence is lost by the broker, not by
wellkept: its run stays queued in the store, and the coordinator sends it again once its queue
is found empty after `executor.requeue_after`. It runs once, like the run that was going on."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.celery.brokers import RestartableRedis
from tests.celery.conftest import WriteCelery
from tests.celery.workers import Worker
from tests.coordinator.helpers import ledger
from tests.helpers import wait_for
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.history import dispatches


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RestartableRedis]:
    """A private redis-server that saves nothing, so a restart empties it."""
    s = RestartableRedis(tmp_path / "redis")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def broker(server: RestartableRedis) -> str:
    """This module's broker is a private redis-server (it overrides conftest's)."""
    return server.url


def test_a_message_waiting_in_redis_when_it_dies_is_sent_again(
        celery_config: WriteCelery, server: RestartableRedis) -> None:
    cfg = celery_config("""\
        tasks:
          job: {kind: steps, items: 30, every: 5, pause: 0.15}
          later: {kind: tick, ledger: later.sqlite3}
        """, executor=", requeue_after: 2s")
    worker = Worker(cfg, "w").wait_ready()          # one process: `later` waits in the queue
    coord = Coordinator(Engine(load_config(cfg)))
    serving = threading.Thread(target=lambda: coord.serve(install_signals=False), daemon=True)
    serving.start()
    store = coord.store
    try:
        (job,) = coord.run_now(["job"])
        assert wait_for(lambda: len(ledger(cfg.parent)) >= 3, 60), worker.text()
        (later,) = coord.run_now(["later"])         # published: it waits behind `job`
        assert wait_for(lambda: (d := dispatches.get(store, later)) is not None
                        and d.publish_count == 1, 30)
        server.stop()                                 # kill -9, nothing saved
        time.sleep(1)
        server.start()

        def ended(run_id: str) -> bool:
            r = store.get_run(run_id)
            return r is not None and r.status.is_final

        assert wait_for(lambda: ended(job) and ended(later), 120), worker.text()
    finally:
        coord.request_shutdown()
        serving.join(60)
    assert Counter(r[0] for r in ledger(cfg.parent)) == Counter(range(30))
    assert [r[1] for r in ledger(cfg.parent, "later.sqlite3")] == [later]
    sent = dispatches.get(store, later)
    assert sent is not None
    assert (sent.status, sent.outcome, sent.publish_count) == ("finished", "completed", 2)
