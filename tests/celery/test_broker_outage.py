"""The broker stops mid-run and comes back: nothing is lost. A private redis-server is really
stopped (kill -9, nothing saved: its messages are gone) and started again; the shared RabbitMQ
is cut off behind a proxy (its connections close, as when it stops) and reached again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.celery.brokers import BrokerProxy, RestartableRedis
from tests.celery.conftest import WriteCelery, rabbitmq_broker
from tests.celery.workers import Worker
from tests.coordinator.helpers import ledger
from tests.helpers import wait_for
from wellkept.config import load_config
from wellkept.coordinator import Coordinator
from wellkept.engine import Engine
from wellkept.history import dispatches
from wellkept.types import RunStatus


class Outage:
    def __init__(self, url: str, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self.url, self.stop, self.start = url, stop, start


@pytest.fixture(params=["redis", "rabbitmq"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "redis":
        server = RestartableRedis(tmp_path / "redis")
        server.start()
        yield Outage(server.url, server.stop, server.start)
        server.stop()
        return
    made = rabbitmq_broker()                          # a vhost of the test's own
    vhost = next(made).rsplit("/", 1)[1]
    proxy = BrokerProxy(("127.0.0.1", 5672))
    proxy.start()
    yield Outage(f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}", proxy.stop, proxy.start)
    proxy.stop()
    next(made, None)


@pytest.fixture
def broker(outage: Outage) -> str:
    """This module's broker is the one that goes away (it overrides conftest's)."""
    return outage.url


def test_the_broker_stopped_mid_run_loses_nothing(celery_config: WriteCelery,
                                                  outage: Outage) -> None:
    cfg = celery_config("""\
        tasks:
          job: {kind: steps, items: 40, every: 5, pause: 0.15}
          later: {kind: tick, ledger: later.sqlite3}
        """, executor=", requeue_after: 2s")
    worker = Worker(cfg, "w").wait_ready()
    coord = Coordinator(Engine(load_config(cfg)))
    serving = threading.Thread(target=lambda: coord.serve(install_signals=False), daemon=True)
    serving.start()
    try:
        (job,) = coord.run_now(["job"])
        assert wait_for(lambda: len(ledger(cfg.parent)) >= 5, 60), worker.text()
        outage.stop()                                  # mid-run
        time.sleep(1)
        (later,) = coord.run_now(["later"])            # sent while the broker is away
        time.sleep(2)
        assert len(ledger(cfg.parent)) < 40            # the run went on meanwhile
        back = datetime.now(UTC)
        outage.start()
        store = coord.store

        def ended(run_id: str) -> bool:
            record = store.get_run(run_id)
            return record is not None and record.status.is_final

        assert wait_for(lambda: ended(job) and ended(later), 120), worker.text()
    finally:
        coord.request_shutdown()
        serving.join(60)
    for run_id in (job, later):
        record = store.get_run(run_id)
        assert record is not None and record.status is RunStatus.COMPLETED, record
        sent = dispatches.get(store, run_id)
        assert sent is not None and sent.status == "finished"
    items = Counter(row[0] for row in ledger(cfg.parent))
    assert items == Counter(range(40))                 # every item once: it ran once
    assert [row[1] for row in ledger(cfg.parent, "later.sqlite3")] == [later]
    sent_later = dispatches.get(store, later)
    # its first send failed; the coordinator's upkeep sent it once the broker was back
    assert sent_later is not None and sent_later.published_at is not None
    assert sent_later.published_at >= back
