"""Shared fixtures: real services (PostgreSQL, MariaDB, Redis), configs and SQLite files.

A fixture whose service is unreachable fails the test with the command that starts it; tests
never skip in silence.
"""

from __future__ import annotations

import os
import signal
import socket
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_app_db

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "MariaDB": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
             "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    "RabbitMQ": "rabbitmq-server -detached",
}
# a suite started in the background of a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so would every wellkept process a test starts, so the tests of Ctrl-C
# would fail for the way they were launched; the suite's children get the default again
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PG_URL = os.environ.get("WELLKEPT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("WELLKEPT_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("WELLKEPT_TEST_REDIS", "redis://127.0.0.1:6379/15")


def require_service(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"{name} is not reachable on {host}:{port} ({exc}). Start it with:\n"
                    f"  {START_HINTS[name]}\n(or run `make services`)", pytrace=False)


@pytest.fixture(autouse=True)
def _own_secrets() -> Iterator[None]:
    """Each test starts with the secrets no earlier test registered: the registry is
    process-wide (one wellkept process, one config), so a password like ``guest`` that one
    test's config registered would otherwise be masked in the next test's output."""
    from wellkept import redact

    with redact._lock:
        before = set(redact._secrets)
    yield
    with redact._lock:
        redact._secrets.clear()
        redact._secrets.update(before)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return PG_URL


@pytest.fixture
def postgres_db(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    name = f"wk_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def standby_url(postgres_admin_url: str) -> Iterator[str]:
    """A real PostgreSQL server in recovery (a standby with no primary): a throwaway cluster
    made with initdb, started with standby.signal on a free loopback port."""
    from tests.pg_cluster import new_cluster

    cluster = new_cluster(standby=True)
    yield cluster.url
    cluster.remove()


@pytest.fixture
def private_pg() -> Iterator[object]:
    """A private PostgreSQL server, started, that the test may stop and start (see
    tests.pg_cluster)."""
    from tests.pg_cluster import new_cluster

    cluster = new_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def mysql_url() -> str:
    require_service("MariaDB", "127.0.0.1", 3306)
    return MYSQL_URL


@pytest.fixture
def mysql_db(mysql_url: str) -> Iterator[str]:
    """A fresh, empty MariaDB database for one test; dropped afterwards."""
    import pymysql

    name = f"wk_test_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield f"{mysql_url.rsplit('/', 1)[0]}/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[tuple[str, Any]]:
    """A key prefix of the test's own on the shared Redis, and a client; every key under the
    prefix is unlinked afterwards (other users' keys are never touched)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    name = f"wktest:{uuid.uuid4().hex[:10]}"
    yield name, client
    for key in client.scan_iter(match=f"{name}:*", count=1000):
        client.unlink(key)
    client.close()


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    return make_app_db(tmp_path / "app.sqlite3")


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a wellkept.yml (dedented) into the test's folder and return its path."""

    def write(text: str, name: str = "wellkept.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
