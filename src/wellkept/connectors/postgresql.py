"""PostgreSQL through psycopg 3.

Every session sets ``lock_timeout``, ``statement_timeout`` and ``application_name=wellkept``
from the target's settings, so nothing wellkept sends can queue behind a lock for long.
"""

from __future__ import annotations

import math
import time
from typing import Any

from wellkept.connector import Connector, Ping
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed
from wellkept.redact import redact


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000)


class PostgresConnector(Connector):
    """PostgreSQL servers (``postgresql://user:password@host:5432/db``)."""

    name = "postgresql"
    default_port = 5432
    summary = "PostgreSQL 12+, through psycopg 3"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            psycopg = require("psycopg", "postgres", "A PostgreSQL target")
            url = self.settings.url.replace("postgres://", "postgresql://", 1)
            options = (f"-c lock_timeout={_ms(self.settings.lock_timeout)} "
                       f"-c statement_timeout={_ms(self.settings.statement_timeout)}")
            try:
                self._conn = psycopg.connect(
                    url, autocommit=True, application_name="wellkept", options=options,
                    connect_timeout=max(1, math.ceil(self.settings.timeout.total_seconds())))
            except psycopg.Error as exc:
                raise ConnectionFailed(f"cannot connect to {redact(self.identity())}: "
                                       f"{redact(str(exc)).strip()}") from None
        return self._conn

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        row = self.conn.execute("SELECT current_setting('server_version'), "
                                "pg_is_in_recovery()").fetchone()
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=f"PostgreSQL {row[0]}",
                    details={"in_recovery": bool(row[1])})

    def interrupt(self) -> None:
        if self._conn is not None:
            self._conn.cancel_safe()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
