"""The test project, set up once per session: a PostgreSQL database (``default``), an SQLite
file (``lite``) and a MariaDB database (``shop``, no Django tables), migrated once. Each test
gets fresh rows (``seeded``); wellkept's history accumulates in ``default`` across tests, so
tests look up their own runs by id."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SETTINGS = "tests.django_app.settings"


@pytest.fixture(scope="session")
def django_project(postgres_admin_url: str, mysql_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment a ``manage.py`` of the test project needs (already applied here)."""
    import psycopg
    import pymysql

    name = f"wk_dj_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    folder = tmp_path_factory.mktemp("django")
    env = {"WELLKEPT_DJANGO_PG": f"{postgres_admin_url.rsplit('/', 1)[0]}/{name}",
           "WELLKEPT_DJANGO_MYSQL": f"{mysql_url.rsplit('/', 1)[0]}/{name}",
           "WELLKEPT_DJANGO_DIR": str(folder), "DJANGO_SETTINGS_MODULE": SETTINGS}
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    for alias in ("default", "lite"):
        call_command("migrate", database=alias, verbosity=0)
    yield env
    from django.db import connections

    connections.close_all()
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    my.close()


@pytest.fixture(params=["default", "lite"])
def alias(request: pytest.FixtureRequest, django_project: dict[str, str]) -> Iterator[str]:
    """Each test on PostgreSQL (``default``) and on SQLite (``lite``); sessions are routed to
    the database under test."""
    from django.test import override_settings

    with override_settings(TEST_SESSIONS_DATABASE=request.param):
        yield request.param


@pytest.fixture
def seeded(alias: str) -> dict[str, Any]:
    """Fresh rows in the database under test (see ``data.seed``)."""
    from tests.django_app.data import seed

    return seed(alias)


@pytest.fixture
def project_dir(django_project: dict[str, str]) -> Path:
    return Path(django_project["WELLKEPT_DJANGO_DIR"])


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    from tests.conftest import require_service

    require_service("RabbitMQ", "127.0.0.1", 5672)
    return os.environ.get("WELLKEPT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
