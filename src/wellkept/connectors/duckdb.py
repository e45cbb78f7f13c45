"""DuckDB database files.

DuckDB lets one process open a file read-write and refuses every other open, even read-only,
while it does. That is normal for a file an ingest job is writing, so a ping reports it as
``locked`` with the holder's PID instead of failing (seed 000), and a backup or restore ends
as ``Unavailable`` naming it. Backups are exports (see ``duckdb_dump``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from wellkept.connector import Connector, DumpInfo, DumpOptions, Ping, RowStream, StatsReport
from wellkept.connectors import _fileurl
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed
from wellkept.records import Action, Metrics

_HOLDER = re.compile(r"PID (\d+)")


class DuckDBConnector(Connector):
    """DuckDB database files (``duckdb:///relative/path.duckdb``)."""

    name = "duckdb"
    driver = "duckdb"
    summary = "DuckDB database files"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        #: the connection of the operation in progress (for ``interrupt``)
        self._busy: Any = None

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        return _fileurl.resolve(url, base_dir)

    @classmethod
    def create_database(cls, url: str, settings: Any) -> None:
        """The restore makes the file; it must not exist yet."""
        _fileurl.refuse_existing(url)

    @classmethod
    def drop_created_database(cls, url: str, settings: Any) -> None:
        _fileurl.remove_created(url, (".wal",))

    @property
    def path(self) -> Path:
        return _fileurl.path_of(self.settings.url)

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

    def interrupt(self) -> None:
        conn = self._busy
        if conn is not None:
            with suppress(Exception):  # it may have just closed
                conn.interrupt()

    @contextmanager
    def _session(self, path: Path | None = None, *, read_only: bool,
                 create: bool = False) -> Iterator[Any]:
        """One connection for one operation (see ``duckdb_dump.opened``)."""
        from wellkept.connectors import duckdb_dump

        with duckdb_dump.opened(path or self.path, read_only=read_only, create=create) as conn:
            self._busy = conn
            try:
                yield conn
            finally:
                self._busy = None

    # --- maintenance -----------------------------------------------------------------------------

    def plan_checkpoint(self, params: Any) -> list[Action]:
        from wellkept.connectors import duckdb_maintenance

        duckdb = require("duckdb", "duckdb", "A DuckDB target")
        with self._session(read_only=True):  # the file must be ours to write: fail early
            pass
        return duckdb_maintenance.plan_checkpoint(self.path, duckdb.__version__, params)

    def plan_analyze(self, params: Any) -> list[Action]:
        from wellkept.connectors import duckdb_maintenance

        with self._session(read_only=True) as conn:
            return duckdb_maintenance.plan_analyze(conn, params)

    def apply(self, action: Action) -> Metrics:
        from wellkept.connectors import duckdb_maintenance

        with self._session(read_only=False) as conn:
            return duckdb_maintenance.apply(conn, self.path, action)

    def collect_stats(self, params: Any) -> StatsReport:
        from wellkept.connectors import duckdb_maintenance

        with self._session(read_only=True) as conn:
            return duckdb_maintenance.stats(conn, self.path, params)

    @contextmanager
    def read_query(self, query: str, batch_size: int) -> Iterator[RowStream]:
        """The user's query on a read-only connection (DuckDB refuses writes through it),
        fetched ``batch_size`` rows at a time. A file held by a writer ends the run
        ``skipped``, as other reads do."""
        from wellkept.connectors import _rows

        with self._session(read_only=True) as conn:
            conn.execute(query)
            yield _rows.stream(conn, batch_size)

    # --- backups (Dumpable) ---------------------------------------------------------------------

    def dump_estimate(self) -> int:
        wal = Path(f"{self.path}.wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        from wellkept.connectors import duckdb_dump

        with self._session(read_only=True) as conn:
            return duckdb_dump.dump(conn, self.path, out, options)

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        from wellkept.connectors import duckdb_dump

        return duckdb_dump.list_dump(source, fmt, options)

    def scratch(self) -> AbstractContextManager[str]:
        from wellkept.connectors import duckdb_dump

        return duckdb_dump.scratch(lambda path: self._session(path, read_only=False,
                                                              create=True))

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        from wellkept.connectors import duckdb_dump

        folder = duckdb_dump.unpack(source, fmt, options)  # before the file's lock is taken
        with self._session(read_only=False, create=True) as conn:
            duckdb_dump.load(conn, folder, options.replace)

    def content_counts(self) -> dict[str, int]:
        from wellkept.connectors import duckdb_dump

        with self._session(read_only=True) as conn:
            return duckdb_dump.content_counts(conn)

    def is_empty(self) -> bool:
        from wellkept.connectors import duckdb_dump

        if not self.path.exists():
            return True  # a restore creates it
        with self._session(read_only=True) as conn:
            return duckdb_dump.is_empty(conn)

    def smoke(self, query: str) -> Any:
        from wellkept.connectors import duckdb_dump

        with self._session(read_only=True) as conn:
            return duckdb_dump.smoke(conn, query)
