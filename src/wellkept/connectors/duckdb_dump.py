"""DuckDB backups: ``EXPORT DATABASE`` to Parquet, streamed out as a tar, and ``IMPORT DATABASE``.

A dump is DuckDB's own export folder (``schema.sql``, ``load.sql`` and one Parquet file per
table) as a tar stream, followed by ``wellkept-export.json``, a trailer listing every file and
its size. The trailer comes last on purpose: a stream cut short anywhere loses it, so a
truncated dump is always told apart from a complete one, even when the cut falls between two
members (where tar alone would see a shorter but valid archive).

The database is opened read-only for a dump: DuckDB then shares the file with other readers,
keeps writers out for the export's duration, and the export is one consistent snapshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from wellkept.connector import DumpInfo, DumpOptions, smoke_answer
from wellkept.connectors._drivers import require
from wellkept.errors import ConnectionFailed, Locked, TaskFailed

FORMAT = "duckdb_export"
SUFFIX = ".tar"
TRAILER = "wellkept-export.json"
REQUIRED = ("schema.sql", "load.sql")
CHUNK = 1024 * 1024
_HOLDER = re.compile(r"PID (\d+)")

_TABLES = """
SELECT schema_name, table_name FROM duckdb_tables()
WHERE database_name = current_database() AND NOT internal AND NOT temporary
ORDER BY schema_name, table_name
"""
_VIEWS = """
SELECT count(*) FROM duckdb_views()
WHERE database_name = current_database() AND NOT internal AND NOT temporary
"""


def quote(name: str) -> str:
    """A DuckDB identifier, double-quoted (inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal (inner single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def opened(path: Path, *, read_only: bool, create: bool = False) -> Iterator[Any]:
    """A connection to the file for one operation, closed afterwards so the file's lock is
    held no longer than needed. A file another process holds is ``Locked`` (with the
    holder's PID); DuckDB errors inside the block become TaskFailed."""
    duckdb = require("duckdb", "duckdb", "A DuckDB target")
    if not create and not path.exists():
        raise ConnectionFailed(f"no DuckDB database file at {path}")
    try:
        conn = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            match = _HOLDER.search(text)
            holder = f" (PID {match.group(1)})" if match else ""
            raise Locked(f"{path.name} is held by another process{holder}: {text}",
                         int(match.group(1)) if match else None) from None
        raise ConnectionFailed(f"cannot open {path}: {text}") from None
    except duckdb.Error as exc:
        raise ConnectionFailed(f"cannot open {path}: {exc}") from None
    try:
        yield conn
    except duckdb.InterruptException:
        raise TaskFailed("DuckDB statement interrupted") from None
    except duckdb.Error as exc:
        raise TaskFailed(f"DuckDB error on {path.name}: {exc}") from None
    finally:
        conn.close()


def tables(conn: Any) -> list[tuple[str, str]]:
    return [(str(s), str(t)) for s, t in conn.execute(_TABLES).fetchall()]


def content_counts(conn: Any) -> dict[str, int]:
    """Exact rows per table, as ``schema.table``."""
    counts: dict[str, int] = {}
    for schema, table in tables(conn):
        row = conn.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}").fetchone()
        counts[f"{schema}.{table}"] = int(row[0])
    return counts


def is_empty(conn: Any) -> bool:
    """No tables and no views of our own."""
    return not tables(conn) and int(conn.execute(_VIEWS).fetchone()[0]) == 0


def smoke(conn: Any, query: str) -> Any:
    return smoke_answer(conn.execute(query).fetchone())


# --- dump ---------------------------------------------------------------------------------------


def dump(conn: Any, path: Path, out: BinaryIO, options: DumpOptions) -> DumpInfo:
    """Export the database into the workdir, then stream that folder out as a tar."""
    duckdb = require("duckdb", "duckdb", "A DuckDB target")
    # CHECKPOINT folds a leftover WAL into the file where we may write; on our read-only
    # connection it is a no-op, and the export reads through the WAL either way
    conn.execute("CHECKPOINT")
    counts = content_counts(conn)  # same connection, same read-only file: the export's rows
    export = options.workdir / "export"
    conn.execute(f"EXPORT DATABASE {literal(str(export))} (FORMAT PARQUET)")
    files = sorted(p for p in export.rglob("*") if p.is_file())
    sizes = {p.relative_to(export).as_posix(): p.stat().st_size for p in files}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            name = file.relative_to(export).as_posix()
            with file.open("rb") as fh:
                tar.addfile(_member(name, sizes[name]), fh)
        trailer = json.dumps({"files": sizes, "duckdb": duckdb.__version__},
                             sort_keys=True).encode()
        tar.addfile(_member(TRAILER, len(trailer)), _Bytes(trailer))
    version = str(duckdb.__version__)
    return DumpInfo(format=FORMAT, suffix=SUFFIX, database=str(path), server_version=version,
                    tools={"duckdb": version}, counts=counts, counts_exact=True,
                    details={"files": len(files), "bytes": sum(sizes.values())})


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A plain, private file entry: no owner names, no timestamps that leak anything."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    return info


class _Bytes:
    """Just enough of a file for ``TarFile.addfile``."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._at + n
        chunk, self._at = self._data[self._at:end], min(end, len(self._data))
        return chunk


# --- reading a dump -----------------------------------------------------------------------------


def list_dump(source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
    """Read the whole tar stream and check it is complete; return its member names."""
    return _read(source, fmt, None)


def _read(source: BinaryIO, fmt: str, into: Path | None) -> list[str]:
    """Walk the tar stream, checking every member against the trailer; with ``into``, write
    the files there. TaskFailed on anything short of a complete export."""
    if fmt != FORMAT:
        raise TaskFailed(f"the DuckDB connector reads {FORMAT} dumps, not {fmt!r}")
    seen: dict[str, int] = {}
    trailer: dict[str, Any] | None = None
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for member in tar:
                if trailer is not None:
                    raise TaskFailed(f"the dump has {member.name!r} after its trailer")
                name = _safe_name(member)
                data = tar.extractfile(member)
                assert data is not None  # _safe_name let only regular files through
                if name == TRAILER:
                    trailer = json.loads(data.read())
                    continue
                seen[name] = _copy(data, into / name if into else None)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise TaskFailed(f"the dump is truncated or not a tar archive: {exc}") from None
    if trailer is None:
        raise TaskFailed(f"the dump is truncated: its trailer {TRAILER} is missing")
    if seen != trailer.get("files"):
        raise TaskFailed("the dump's files do not match its trailer (truncated or altered)")
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        raise TaskFailed(f"the dump is not a DuckDB export: {', '.join(missing)} missing")
    return [*seen, TRAILER]


def _safe_name(member: tarfile.TarInfo) -> str:
    """Only plain files at safe relative paths: an archive must not write outside its folder."""
    path = PurePosixPath(member.name)
    if not member.isfile() or path.is_absolute() or ".." in path.parts or not path.parts:
        raise TaskFailed(f"the dump holds an unexpected entry {member.name!r}")
    return path.as_posix()


def _copy(data: IO[bytes], dest: Path | None) -> int:
    """Read a member to its end (a short one raises); write it to ``dest`` when given."""
    size = 0
    out = None
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
    try:
        while chunk := data.read(CHUNK):
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return size


# --- restore and scratch ------------------------------------------------------------------------


def unpack(source: BinaryIO, fmt: str, options: DumpOptions) -> Path:
    """Unpack a dump into the workdir, checked in full; returns the export folder."""
    folder = options.workdir / "import"
    folder.mkdir(mode=0o700)
    _read(source, fmt, folder)
    return folder


def load(conn: Any, folder: Path, replace: bool) -> None:
    """IMPORT an export folder in one transaction, so a failed import (a table that already
    exists) leaves the database as it was. With ``replace``, the objects the dump creates are
    dropped first, in the same transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        for statement in _drops(folder) if replace else []:
            conn.execute(statement)
        conn.execute(f"IMPORT DATABASE {literal(str(folder))}")
    except BaseException:
        with suppress(Exception):  # keep the import's own error, the one worth reporting
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_DUMPED = [  # (statement, catalog query) in a safe drop order: dependants first
    ("DROP VIEW IF EXISTS {}", "SELECT view_name FROM duckdb_views() WHERE NOT internal "
                               "AND schema_name = 'main'"),
    ("DROP TABLE IF EXISTS {}", "SELECT table_name FROM duckdb_tables() WHERE NOT internal "
                                "AND schema_name = 'main'"),
    ("DROP MACRO IF EXISTS {}", "SELECT function_name FROM duckdb_functions() WHERE NOT "
                                "internal AND schema_name = 'main' AND function_type = 'macro'"),
    ("DROP MACRO TABLE IF EXISTS {}", "SELECT function_name FROM duckdb_functions() WHERE NOT "
                                      "internal AND schema_name = 'main' "
                                      "AND function_type = 'table_macro'"),
    ("DROP SEQUENCE IF EXISTS {}", "SELECT sequence_name FROM duckdb_sequences() "
                                   "WHERE schema_name = 'main'"),
    ("DROP TYPE IF EXISTS {}", "SELECT type_name FROM duckdb_types() WHERE NOT internal "
                               "AND schema_name = 'main'"),
    ("DROP SCHEMA IF EXISTS {} CASCADE", "SELECT schema_name FROM duckdb_schemas() "
                                         "WHERE NOT internal"),
]


def _drops(folder: Path) -> list[str]:
    """The DROPs that clear the way for this export: its ``schema.sql`` is run in an in-memory
    database (no data), and every object it made there is named. Schemas other than ``main``
    are dropped whole, as IMPORT creates them anew.

    The order is found by dropping them in that same in-memory copy, retrying the ones that
    fail, so a table is dropped after the tables whose foreign keys point at it: inside the
    target's transaction a failed DROP cannot be retried."""
    duckdb = require("duckdb", "duckdb", "A DuckDB target")
    mem = duckdb.connect(":memory:")
    try:
        mem.execute((folder / "schema.sql").read_text(encoding="utf-8"))
        pending = [statement.format(quote(str(name))) for statement, query in _DUMPED
                   for (name,) in mem.execute(query).fetchall()]
        ordered: list[str] = []
        while pending:
            left = []
            for statement in pending:
                try:
                    mem.execute(statement)
                    ordered.append(statement)
                except duckdb.Error:
                    left.append(statement)
            if len(left) == len(pending):  # no way round: let the target say why
                return ordered + left
            pending = left
        return ordered
    except duckdb.Error as exc:
        raise TaskFailed(f"cannot read the dump's schema.sql: {exc}") from None
    finally:
        mem.close()


@contextmanager
def scratch(opener: Callable[[Path], Any]) -> Iterator[str]:
    """An empty database file in a private temporary folder; yields its URL, removes it all
    afterwards. ``opener`` creates the file (and maps errors)."""
    folder = Path(tempfile.mkdtemp(prefix="wellkept-duckdb-"))
    try:
        path = folder / "scratch.duckdb"
        with opener(path):
            pass
        yield f"duckdb:///{path}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
