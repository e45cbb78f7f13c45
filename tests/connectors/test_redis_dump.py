"""Redis backups against real servers: RDB snapshots with redis-cli, checks with
redis-check-rdb, restores through a temporary redis-server into a scratch server."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from tests.helpers import private_redis
from wellkept.config import TargetSettings
from wellkept.connector import Dumpable, DumpInfo, DumpOptions
from wellkept.connectors.redis import RedisConnector
from wellkept.connectors.redis_dump import FORMAT, Endpoint
from wellkept.errors import ConnectionFailed, TaskFailed

PASSWORD = "pw:" + uuid.uuid4().hex  # a colon, so the URL must quote it


@pytest.fixture
def workdir(tmp_path: Path) -> Callable[[], DumpOptions]:
    """A fresh private scratch folder for each dump, list or restore (as the pipeline gives)."""
    made = iter(range(1000))

    def make() -> DumpOptions:
        folder = tmp_path / f"work{next(made)}"
        folder.mkdir(mode=0o700)
        return DumpOptions(workdir=folder)

    return make


@pytest.fixture
def private_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own with a password, on a free loopback port."""
    with private_redis(tmp_path / "redis", PASSWORD) as url:
        yield url


def connector(url: str) -> RedisConnector:
    return RedisConnector("cache", TargetSettings(url=url))


def fill(client: Any, prefix: str = "") -> None:
    client.set(f"{prefix}greeting", "hello")
    client.set(f"{prefix}binary", bytes(range(256)))
    client.hset(f"{prefix}user:1", mapping={"name": "Ada", "lang": "en"})
    client.rpush(f"{prefix}queue", "a", "b", "c")
    client.sadd(f"{prefix}tags", "x", "y")
    client.zadd(f"{prefix}board", {"p1": 1.5, "p2": 3})
    client.set(f"{prefix}session", "token", ex=3600)
    client.mset({f"{prefix}n:{i}": i for i in range(300)})


def dumped_while_watching(conn: RedisConnector, options: DumpOptions
                          ) -> tuple[bytes, DumpInfo, list[list[str]]]:
    """Dump, and meanwhile record the argv (and environment keys) of every redis-cli child."""
    seen: list[list[str]] = []
    done = threading.Event()
    me = psutil.Process()

    def watch() -> None:
        while not done.is_set():
            for child in me.children(recursive=True):
                try:
                    if child.name() == "redis-cli":
                        seen.append(child.cmdline())
                        seen.append(sorted(child.environ()))
                except psutil.Error:
                    pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = io.BytesIO()
    try:
        info = conn.dump(out, options)
    finally:
        done.set()
        watcher.join()
    return out.getvalue(), info, seen


def test_round_trip_through_a_scratch_server(private_url: str,
                                             workdir: Callable[[], DumpOptions]) -> None:
    conn = connector(private_url)
    assert isinstance(conn, Dumpable)
    source = redis.Redis.from_url(private_url)
    other = redis.Redis.from_url(private_url.rsplit("/", 1)[0] + "/3")
    fill(source)
    other.set("elsewhere", "db3")
    assert conn.dump_estimate() > 0

    data, info, seen = dumped_while_watching(conn, workdir())
    assert seen, "redis-cli was never seen running"
    assert any("--rdb" in argv for argv in seen)
    assert all(PASSWORD not in " ".join(argv) for argv in seen)  # not on the command line...
    assert any("REDISCLI_AUTH" in entry for entry in seen)  # ...but in its environment
    assert (info.format, info.suffix, info.counts_exact) == (FORMAT, ".rdb", False)
    assert info.counts == {"db0": 307, "db3": 1}
    assert info.tools["redis-cli"] and info.server_version
    assert data.startswith(b"REDIS")

    lines = conn.list_dump(io.BytesIO(data), FORMAT, workdir())
    assert lines[0].startswith("RDB version ")
    assert "db0: 307 keys" in lines and "db3: 1 keys" in lines

    with conn.scratch() as url:
        assert url.startswith("redis://:") and "@127.0.0.1:" in url
        target = connector(url)
        assert target.is_empty()
        target.restore(io.BytesIO(data), FORMAT, workdir())
        assert target.content_counts() == conn.content_counts() == info.counts
        copy = redis.Redis.from_url(url)
        for key in [k for k in source.scan_iter() if not k.startswith(b"n:")]:
            assert copy.type(key) == source.type(key), key
            if copy.type(key) == b"set":  # a set's encoding order may differ
                assert copy.smembers(key) == source.smembers(key), key
            else:
                assert copy.dump(key) == source.dump(key), key  # the same value, byte for byte
        assert [copy.get(f"n:{i}") for i in range(300)] == [str(i).encode() for i in range(300)]
        assert copy.hgetall("user:1") == {b"name": b"Ada", b"lang": b"en"}
        assert 0 < copy.pttl("session") <= 3600_000
        assert copy.pttl("greeting") == -1
        assert redis.Redis.from_url(url.rsplit("/", 1)[0] + "/3").get("elsewhere") == b"db3"
        assert target.smoke("DBSIZE") == 307
        assert target.smoke('GET greeting') == "hello"
        assert target.smoke("LRANGE queue 0 -1") == ["a", "b", "c"]
        copy.close()
        target.close()
    with pytest.raises(ConnectionFailed):
        connector(url).ping()  # the scratch server is gone
    conn.close()
    source.close()
    other.close()


def test_damaged_dumps_fail_the_listing(private_url: str,
                                        workdir: Callable[[], DumpOptions]) -> None:
    conn = connector(private_url)
    with redis.Redis.from_url(private_url) as client:
        fill(client)
    out = io.BytesIO()
    conn.dump(out, workdir())
    data = out.getvalue()
    for bad in (data[: len(data) // 2], data[:-1], b"", b"not an rdb file"):
        with pytest.raises(TaskFailed):
            conn.list_dump(io.BytesIO(bad), FORMAT, workdir())
    with pytest.raises(TaskFailed, match="reads redis_rdb"):
        conn.list_dump(io.BytesIO(data), "duckdb_export", workdir())
    with conn.scratch() as url, pytest.raises(TaskFailed):
        connector(url).restore(io.BytesIO(data[: len(data) // 2]), FORMAT, workdir())


def test_the_shared_server_round_trip(redis_url: str,
                                      workdir: Callable[[], DumpOptions]) -> None:
    """Against the shared service (db 15 by default): others may write meanwhile, so only
    our own keys are compared."""
    db = redis_url.rsplit("/", 1)[1]
    prefix = f"wk-test:{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(redis_url)
    fill(client, prefix)
    conn = connector(redis_url)
    try:
        out = io.BytesIO()
        info = conn.dump(out, workdir())
        assert info.counts[f"db{db}"] >= 307
        with conn.scratch() as url:
            assert url.endswith(f"/{db}")  # the scratch server answers on the target's database
            target = connector(url)
            target.restore(io.BytesIO(out.getvalue()), FORMAT, workdir())
            copy = redis.Redis.from_url(url)
            assert copy.get(f"{prefix}greeting") == b"hello"
            assert copy.lrange(f"{prefix}queue", 0, -1) == [b"a", b"b", b"c"]
            assert 0 < copy.ttl(f"{prefix}session") <= 3600
            assert target.smoke(f"EXISTS {prefix}greeting") == 1
            copy.close()
            target.close()
    finally:
        client.delete(*client.keys(f"{prefix}*"))
        client.close()
        conn.close()


def test_redis_cli_gets_connection_flags_but_no_secret() -> None:
    endpoint = Endpoint.from_url("rediss://app:s%40cret@cache.internal:6380/4"
                                 "?ssl_cert_reqs=none")
    args = endpoint.cli_args()
    assert args == ["-h", "cache.internal", "-p", "6380", "-n", "4", "--user", "app", "--tls",
                    "--insecure"]
    assert endpoint.env()["REDISCLI_AUTH"] == "s@cret"


def test_a_refused_command_is_a_task_failure() -> None:
    with connector("redis://127.0.0.1:6379/15").scratch() as url:  # no server needed there
        target = connector(url)
        with pytest.raises(TaskFailed, match="refused"):
            target.smoke("NOSUCHCOMMAND x")
        with pytest.raises(TaskFailed, match="cannot parse"):
            target.smoke('GET "unclosed')
        target.close()


def test_counts_are_described_in_words_that_agree_with_the_number(tmp_path: Path) -> None:
    from wellkept.connectors.sqlite import SQLiteConnector

    redis_target = connector("redis://127.0.0.1:6379/15")
    assert redis_target.describe_counts({"db0": 1}) == "1 database, 1 key"
    assert redis_target.describe_counts({"db0": 1200, "db3": 34}) == "2 databases, 1,234 keys"
    lite = SQLiteConnector("app", TargetSettings(url=f"sqlite:///{tmp_path / 'x.db'}"))
    assert lite.describe_counts({"t": 1}) == "1 table, 1 row"
    assert lite.describe_counts({"t": 0, "u": 0}) == "2 tables, 0 rows"
