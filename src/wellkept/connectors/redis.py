"""Redis through redis-py; backups are RDB snapshots (see ``redis_dump``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from wellkept.connector import (
    Connector,
    DumpInfo,
    DumpOptions,
    KeyFacts,
    Ping,
    StatsReport,
    Transport,
    is_local_host,
)
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed, TaskFailed, Unavailable
from wellkept.redact import redact
from wellkept.units import plural


class RedisConnector(Connector):
    """Redis servers (``redis://[:password@]host:6379/0``, ``rediss://`` for TLS)."""

    name = "redis"
    driver = "redis"
    default_port = 6379
    summary = "Redis 6+, through redis-py"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._client: Any = None
        #: the redis-cli or temporary redis-server of a dump or restore in progress
        self._child: subprocess.Popen[bytes] | None = None
        self._interrupted = False

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        """The database must be a number: redis-py quietly uses database 0 for one it cannot
        read, so a typo (``/l1`` for ``/11``) would act on database 0."""
        from urllib.parse import parse_qs, unquote, urlsplit

        u = urlsplit(url)
        db = unquote(u.path.lstrip("/")) or parse_qs(u.query).get("db", [""])[0]
        if db and not db.isdigit():
            raise ValueError(f"the Redis database is {db!r}, not a number from 0; write "
                             "redis://HOST:6379/N (database 0 when left out)")
        return url

    @property
    def client(self) -> Any:
        if self._client is None:
            redis = require("redis", "redis", "A Redis target")
            timeout = self.settings.timeout.total_seconds()
            self._client = redis.Redis.from_url(self.settings.url, socket_connect_timeout=timeout,
                                                socket_timeout=timeout)
        return self._client

    def ping(self) -> Ping:
        redis = require("redis", "redis", "A Redis target")
        t0 = time.perf_counter()
        try:
            self.client.ping()
            version = self.client.info("server").get("redis_version", "")
        except redis.RedisError as exc:
            raise ConnectionFailed(f"cannot reach {self.address()}: {redact(str(exc))}") from None
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=f"Redis {version}")

    def health(self) -> Ping:
        """Memory against maxmemory, clients against maxclients; degraded while it loads its
        dataset or, as a replica, has lost its master."""
        from wellkept.connectors import redis_keys

        ping = self.ping()
        t0 = time.perf_counter()
        with self._errors("reading INFO"):
            details = redis_keys.health_details(self.client)
        return Ping(latency_ms=ping.latency_ms + (time.perf_counter() - t0) * 1000,
                    version=ping.version, details=details)

    def collect_stats(self, params: Any) -> StatsReport:
        from wellkept.connectors import redis_keys

        with self._errors("reading INFO"):
            return redis_keys.stats(self.client)

    # --- key cleanup (KeyCleanable) -------------------------------------------------------------

    def memory_used(self) -> int:
        with self._errors("reading INFO memory"):
            return int(self.client.info("memory").get("used_memory", 0))

    def scan_keys(self, pattern: str, cursor: int, count: int,
                  key_type: str | None) -> tuple[int, list[bytes]]:
        from wellkept.connectors import redis_keys

        with self._errors("scanning keys"):
            return redis_keys.scan(self.client, pattern, cursor, count, key_type)

    def key_facts(self, keys: list[bytes], idle: bool) -> list[KeyFacts]:
        from wellkept.connectors import redis_keys

        with self._errors("reading key TTLs"):
            return redis_keys.facts(self.client, keys, idle)

    def delete_keys(self, keys: list[bytes]) -> int:
        from wellkept.connectors import redis_keys

        with self._errors("unlinking keys"):
            return redis_keys.unlink(self.client, keys)

    def expire_keys(self, keys: list[bytes], seconds: int) -> int:
        from wellkept.connectors import redis_keys

        with self._errors("setting TTLs"):
            return redis_keys.expire(self.client, keys, seconds)

    # --- records (RecordScanner, for reconcile) -------------------------------------------------

    def scan_hashes(self, pattern: str, batch_size: int
                    ) -> Iterator[list[tuple[str, dict[str, str]]]]:
        from wellkept.connectors import redis_records

        with self._errors("reading hashes"):
            yield from redis_records.hashes(self.client, pattern, batch_size)

    def scan_set_members(self, pattern: str, batch_size: int
                         ) -> Iterator[list[tuple[str, str]]]:
        from wellkept.connectors import redis_records

        with self._errors("reading sets"):
            yield from redis_records.set_members(self.client, pattern, batch_size)

    def transport(self) -> Transport:
        from urllib.parse import urlsplit

        u = urlsplit(self.settings.url)
        host = u.hostname or "localhost"
        tls = u.scheme.lower() == "rediss"
        return Transport(host=host, local=is_local_host(host), tls=tls,
                         how="rediss:// (TLS)" if tls else "redis:// (plain text)")

    def interrupt(self) -> None:
        child = self._child
        if child is not None:
            self._interrupted = True
            with suppress(OSError):
                child.kill()  # the dump or restore then ends with TaskFailed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Map redis-py's errors onto wellkept's: unreachable, still loading, or refused."""
        redis = require("redis", "redis", "A Redis target")
        self._interrupted = False
        try:
            yield
        except redis.RedisError as exc:
            if self._interrupted:  # we killed our own child: say so, not "cannot reach"
                raise TaskFailed(f"{doing} was interrupted") from None
            text = redact(str(exc))
            if isinstance(exc, redis.BusyLoadingError):
                raise Unavailable(f"{self.address()} is loading its dataset: {text}") from None
            if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
                raise ConnectionFailed(f"cannot reach {self.address()} while {doing}: "
                                       f"{text}") from None
            raise TaskFailed(f"Redis refused {doing}: {text}") from None

    def _track(self, child: subprocess.Popen[bytes] | None) -> None:
        self._child = child

    # --- backups (Dumpable) ---------------------------------------------------------------------

    def dump_estimate(self) -> int:
        with self._errors("reading INFO memory"):
            return int(self.client.info("memory").get("used_memory", 0))

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        from wellkept.connectors import redis_dump

        with self._errors("taking an RDB snapshot"):
            return redis_dump.dump(self.client, self.settings.url, out, options, self._track)

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        from wellkept.connectors import redis_dump

        return redis_dump.list_dump(source, fmt, options)

    def scratch(self) -> AbstractContextManager[str]:
        from wellkept.connectors import redis_dump

        db = redis_dump.Endpoint.from_url(self.settings.url).db
        return redis_dump.temp_server(db=db)

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        from wellkept.connectors import redis_dump

        with self._errors("restoring keys"):
            redis_dump.restore(self.settings.url, source, fmt, options,
                               self.settings.statement_timeout.total_seconds(), self._track)

    def content_counts(self) -> dict[str, int]:
        from wellkept.connectors import redis_dump

        with self._errors("reading INFO keyspace"):
            return redis_dump.keyspace(self.client)

    def describe_counts(self, counts: dict[str, int]) -> str:
        keys = sum(counts.values())
        return f"{plural(len(counts), 'database')}, {keys:,} key{'' if keys == 1 else 's'}"

    def is_empty(self) -> bool:
        return not self.content_counts()

    def smoke(self, query: str) -> Any:
        from wellkept.connectors import redis_dump

        with self._errors(f"the command {query!r}"):
            return redis_dump.smoke(self.client, query)
