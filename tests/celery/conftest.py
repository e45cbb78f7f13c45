"""Fixtures for the Celery tests: a broker of each kind, isolated per test, and a config with
the celery executor on a fresh PostgreSQL state store.

- Redis: a database of its own (``WELLKEPT_TEST_CELERY_REDIS``, default db 5), flushed after
  each test; each test also has a queue name of its own.
- RabbitMQ: a virtual host made for the test (``rabbitmqctl add_vhost``) and deleted after.

Every worker and coordinator a test starts is killed when it ends, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.celery import workers
from tests.conftest import require_service

CELERY_REDIS = os.environ.get("WELLKEPT_TEST_CELERY_REDIS", "redis://127.0.0.1:6379/5")
PLUGIN = Path(__file__).parent.parent / "coordinator" / "plugin_tasks.py"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def redis_broker() -> Iterator[str]:
    import redis

    require_service("Redis", "127.0.0.1", 6379)
    yield CELERY_REDIS
    client = redis.Redis.from_url(CELERY_REDIS)
    client.flushdb()
    client.close()


def rabbitmq_broker() -> Iterator[str]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    vhost = f"wk_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker URL, once for Redis and once for RabbitMQ."""
    made = redis_broker() if request.param == "redis" else rabbitmq_broker()
    yield next(made)
    next(made, None)


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    workers.kill_all()


@pytest.fixture
def queue() -> str:
    return f"wk-test-{uuid.uuid4().hex[:10]}"


WriteCelery = Callable[..., Path]


@pytest.fixture
def celery_config(tmp_path: Path, postgres_db: str, broker: str, queue: str) -> WriteCelery:
    """Write a wellkept.yml with the celery executor (the plugin tasks beside it); the body
    adds targets, tasks and schedules."""
    shutil.copy(PLUGIN, tmp_path / "plugin_tasks.py")

    def write(body: str = "", *, executor: str = "", broker_url: str | None = None) -> Path:
        path = tmp_path / "wellkept.yml"
        path.write_text(textwrap.dedent(f"""\
            state: "{postgres_db}"
            plugins: [plugin_tasks]
            executor: {{kind: celery, broker: "{broker_url or broker}", queue: {queue}{executor}}}
            coordinator: {{heartbeat: 1s, leader_lease: 5s, reap_every: 1s, max_concurrent: 4}}
            recovery: {{lease: 3s, backoff: 1s}}
            """) + textwrap.dedent(body), encoding="utf-8")
        return path

    return write
