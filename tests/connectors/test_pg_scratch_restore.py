"""A restore test's scratch restore on a real PostgreSQL: the tables load UNLOGGED (no WAL),
in two pg_restore passes over a stream read once, and the result is the same database; where
a table cannot be unlogged, all stay logged; a real restore is never unlogged."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from wellkept.config import TargetSettings
from wellkept.connector import DumpOptions
from wellkept.connectors import pg_dump
from wellkept.connectors.postgresql import PostgresConnector

HOSTILE = 'odd "name"; DROP TABLE x;--'

SCHEMA = [
    "CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)",
    "INSERT INTO customers (name) SELECT md5(g::text) FROM generate_series(1, 3000) g",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer int REFERENCES customers, total "
    "numeric)",
    "INSERT INTO orders SELECT g, 1 + g % 3000, g * 1.5 FROM generate_series(1, 200000) g",
    "CREATE INDEX ON orders (customer)",
    f'CREATE TABLE "{HOSTILE.replace(chr(34), chr(34) * 2)}" (x int UNIQUE)',
    f'INSERT INTO "{HOSTILE.replace(chr(34), chr(34) * 2)}" VALUES (1), (2)',
    "CREATE MATERIALIZED VIEW totals AS SELECT customer, sum(total) AS t FROM orders GROUP BY 1",
    "CREATE PUBLICATION wk_pub FOR TABLE orders",
]


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def snapshot(url: str) -> dict[str, Any]:
    """What a restore must reproduce: rows, constraints, indexes and the view's contents."""
    with psycopg.connect(url) as conn:
        return {
            "orders": conn.execute("SELECT * FROM orders ORDER BY id").fetchall(),
            "customers": conn.execute("SELECT * FROM customers ORDER BY id").fetchall(),
            "hostile": conn.execute(f'SELECT x FROM "{HOSTILE.replace(chr(34), chr(34) * 2)}"'
                                    " ORDER BY x").fetchall(),
            "totals": conn.execute("SELECT * FROM totals ORDER BY 1").fetchall(),
            "constraints": sorted(r[0] for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace")),
            "indexes": sorted(r[0] for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")),
            "next_id": conn.execute("SELECT last_value FROM customers_id_seq").fetchone(),
        }


def persistence(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(  # type: ignore[arg-type]
            "SELECT c.relname, c.relpersistence FROM pg_class c WHERE c.relnamespace = "
            "'public'::regnamespace AND c.relkind IN ('r', 'p')").fetchall())


def dump(url: str, workdir: Path, jobs: int = 1) -> tuple[bytes, str]:
    conn = PostgresConnector("src", TargetSettings(url=url))
    out = io.BytesIO()
    try:
        info = conn.dump(out, DumpOptions(workdir=workdir, jobs=jobs,
                                          format="directory" if jobs > 1 else ""))
    finally:
        conn.close()
    return out.getvalue(), info.format


def restore(url: str, data: bytes, fmt: str, workdir: Path, *, unlogged: bool,
            jobs: int = 1) -> None:
    conn = PostgresConnector("dest", TargetSettings(url=url))
    try:
        conn.restore(io.BytesIO(data), fmt, DumpOptions(workdir=workdir, jobs=jobs,
                                                        unlogged=unlogged))
    finally:
        conn.close()


@pytest.fixture
def second_db(postgres_admin_url: str) -> Iterator[str]:
    name = "wk_test_scratch_dest"
    execute(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            f"CREATE DATABASE {name}")
    yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    execute(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("jobs", [1, 2], ids=["custom", "directory"])
def test_a_scratch_restore_loads_unlogged_and_equals_the_source(
        postgres_db: str, second_db: str, tmp_path: Path, jobs: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    execute(postgres_db, *SCHEMA)
    data, fmt = dump(postgres_db, tmp_path, jobs)
    kept: list[int] = []
    original_exit = pg_dump._Replay.__exit__

    def spy(self: Any, *exc: object) -> None:
        kept.append(self.kept.tell())
        original_exit(self, *exc)

    monkeypatch.setattr(pg_dump._Replay, "__exit__", spy)
    restore(second_db, data, fmt, tmp_path, unlogged=True, jobs=jobs)
    assert snapshot(second_db) == snapshot(postgres_db)
    assert persistence(second_db) == {"customers": "u", "orders": "u", HOSTILE: "u"}
    with psycopg.connect(second_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
    if jobs == 1:  # the first pass read the table of contents, not the data
        assert len(data) > 4 << 20 and kept and 0 < kept[0] <= 2 << 20


def test_a_partitioned_table_keeps_every_table_logged(postgres_db: str, second_db: str,
                                                      tmp_path: Path) -> None:
    execute(postgres_db, *SCHEMA,
            "CREATE TABLE events (at date, customer int REFERENCES customers) "
            "PARTITION BY RANGE (at)",
            "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') "
            "TO ('2027-01-01')",
            "INSERT INTO events SELECT '2026-01-01'::date + g % 300, 1 + g % 3000 "
            "FROM generate_series(1, 5000) g")
    data, fmt = dump(postgres_db, tmp_path)
    restore(second_db, data, fmt, tmp_path, unlogged=True)
    assert set(persistence(second_db).values()) == {"p"}
    assert snapshot(second_db) == snapshot(postgres_db)
    with psycopg.connect(second_db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (5000,)


def test_a_real_restore_stays_logged_with_its_publications(postgres_db: str, second_db: str,
                                                          tmp_path: Path) -> None:
    execute(postgres_db, *SCHEMA)
    data, fmt = dump(postgres_db, tmp_path)
    restore(second_db, data, fmt, tmp_path, unlogged=False)
    assert set(persistence(second_db).values()) == {"p"}
    assert snapshot(second_db) == snapshot(postgres_db)
    with psycopg.connect(second_db) as conn:
        assert conn.execute("SELECT pubname FROM pg_publication").fetchall() == [("wk_pub",)]


def test_the_replay_hands_the_second_reader_the_whole_stream(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40000  # 10 MB: past the in-memory part, spilled to disk
    with pg_dump._Replay(io.BytesIO(payload), tmp_path) as replay:
        head = replay.first.read(9 << 20) + replay.first.read(100)
        assert head == payload[:len(head)]
        again = b"".join(iter(lambda: replay.again.read(1 << 20), b""))
    assert again == payload


def test_a_restore_test_drops_the_scratch_databases_a_crash_left(
        postgres_admin_url: str) -> None:
    from wellkept.connectors import _scratch

    hour_ago = time.time() - 3600
    stale, busy = _scratch.new_name(hour_ago), _scratch.new_name(hour_ago)
    fresh = _scratch.new_name()
    base = postgres_admin_url.rsplit("/", 1)[0]
    execute(postgres_admin_url, *(f"CREATE DATABASE {n}" for n in (stale, busy, fresh)))
    try:
        with psycopg.connect(f"{base}/{busy}"), \
                psycopg.connect(postgres_admin_url, autocommit=True) as admin, \
                pg_dump.scratch(admin, postgres_admin_url) as url:
            names = {r[0] for r in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'wk\\_verify\\_%'")}
            made = url.rsplit("/", 1)[1]
            assert stale not in names and {busy, fresh, made} <= names
            assert not _scratch.is_stale(made)
    finally:
        execute(postgres_admin_url,
                *(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in (stale, busy, fresh)))


@pytest.mark.parametrize(("url", "expected"), [
    # a Unix socket, the database in the path: the URL keeps its "//" (an empty host)
    ("postgresql:///app?host=/run/postgresql", {"host": "/run/postgresql", "dbname": "other"}),
    ("postgres://u:p@db.example:5433/app?sslmode=require",
     {"host": "db.example", "port": "5433", "user": "u", "password": "p", "sslmode": "require",
      "dbname": "other"}),
    ("postgresql://u@/app?host=/run/postgresql", {"host": "/run/postgresql", "user": "u",
                                                   "dbname": "other"}),
])
def test_with_database_names_another_database_on_the_same_server(
        url: str, expected: dict[str, str]) -> None:
    """What scratch restores and ``restore --create`` connect through: libpq must read it."""
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(pg_dump.with_database(url, "other")) == expected
    hostile = conninfo_to_dict(pg_dump.with_database(url, HOSTILE + "/x?y#z"))
    assert hostile["dbname"] == HOSTILE + "/x?y#z"


def test_a_dbname_in_the_query_string_is_the_database_libpq_connects_to() -> None:
    """libpq reads ?dbname= over the path: restore --create must create (and refuse) the
    database the restore then connects to, and another database of the server is reached
    whatever the query string names."""
    from psycopg.conninfo import conninfo_to_dict

    from wellkept.errors import UsageError

    url = "postgresql://u@h/a?dbname=b&sslmode=require"
    assert pg_dump.database_of(url) == "b"
    assert conninfo_to_dict(pg_dump.with_database(url, "other")) == {
        "user": "u", "host": "h", "dbname": "other", "sslmode": "require"}
    assert pg_dump.database_of("postgresql://h?dbname=x%20y") == "x y"
    with pytest.raises(UsageError, match="names no database"):
        pg_dump.database_of("postgresql://h/?sslmode=require")
