"""Redis through redis-py."""

from __future__ import annotations

import time
from typing import Any

from wellkept.connector import Connector, Ping
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed
from wellkept.redact import redact


class RedisConnector(Connector):
    """Redis servers (``redis://[:password@]host:6379/0``, ``rediss://`` for TLS)."""

    name = "redis"
    default_port = 6379
    summary = "Redis 6+, through redis-py"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._client: Any = None

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
            raise ConnectionFailed(f"cannot reach {self.identity()}: {redact(str(exc))}") from None
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=f"Redis {version}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
