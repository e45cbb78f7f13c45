"""DuckDB database files.

DuckDB lets one process open a file read-write and refuses every other open, even read-only,
while it does. That is normal for a file an ingest job is writing, so a ping reports it as
``locked`` with the holder's PID instead of failing (seed 000).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from wellkept.connector import Connector, Ping
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed

_HOLDER = re.compile(r"PID (\d+)")


class DuckDBConnector(Connector):
    """DuckDB database files (``duckdb:///relative/path.duckdb``)."""

    name = "duckdb"
    summary = "DuckDB database files"

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and not Path(path).is_absolute():
            scheme = url.split(":", 1)[0]  # keep it: a plugin may subclass us
            return f"{scheme}:///{(base_dir / path).resolve()}"
        return url

    @property
    def path(self) -> Path:
        return Path(self.settings.url.split(":///", 1)[1])

    def identity(self) -> str:
        return f"duckdb:{os.path.realpath(self.path)}"

    def ping(self) -> Ping:
        duckdb = require("duckdb", "duckdb", "A DuckDB target")
        if not self.path.exists():
            raise ConnectionFailed(f"no DuckDB database file at {self.path}")
        t0 = time.perf_counter()
        try:
            conn = duckdb.connect(str(self.path), read_only=True)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" not in text.lower():
                raise ConnectionFailed(f"cannot open {self.path}: {text}") from None
            match = _HOLDER.search(text)
            details: dict[str, Any] = {"locked": True,
                                       "holder_pid": int(match.group(1)) if match else None}
            return Ping(latency_ms=(time.perf_counter() - t0) * 1000,
                        version=f"DuckDB {duckdb.__version__}", details=details)
        try:
            conn.execute("SELECT 1").fetchone()
        finally:
            conn.close()
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000,
                    version=f"DuckDB {duckdb.__version__}")
