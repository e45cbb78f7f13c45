"""Archive files for `cleanup`: rows written, made durable, and only then deleted.

A `.parquet` archive is a folder of part files, one per batch (what DuckDB, pyarrow and Spark
read as one dataset), written through DuckDB under a temporary name, fsynced and renamed; the
same index records the parts, and the same reconciliation deletes uncommitted ones.

Each batch is appended to the file as one gzip member (`.jsonl.gz`: one JSON object per row;
`.csv.gz`: a header in the file's first member, then rows) and fsynced, and a line describing
it (byte range, first and last key, row count) is appended to a sidecar index, also fsynced.
Only then does the batch's DELETE commit.

Once the DELETE has committed, the batch's index line is followed by a commit mark (also
fsynced). A crash can therefore leave at most one batch whose DELETE never committed: the last
one, unmarked (the next batch is only written after the one before it committed). Before
writing, `open` looks at that batch alone: when its first key still exists in the source its
DELETE did not commit, and it is taken back out of the file and the index; any bytes past the
last indexed batch (a batch written but never indexed, so never deleted) go too. A marked batch
is never taken back out, even when a new row comes to use its first key (SQLite gives a new row
the largest rowid + 1). An archive whose index is missing or damaged, or that is shorter than
its index says, is refused rather than trimmed: its data cannot be checked against the source.
No row is archived twice, and no deleted row is missing from the archive.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import gzip
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from wellkept.errors import TaskFailed
from wellkept.fs.sync import sync_folder

SUFFIXES = {".jsonl.gz": "jsonl", ".csv.gz": "csv", ".parquet": "parquet"}
#: a Parquet archive's part files, and the names a part has while it is being written
_PART = re.compile(r"part-(\d{6})\.parquet")
_STAGING = re.compile(r"\.part-\d{6}\.parquet\.(tmp|jsonl)")


def file_format(name: str) -> str | None:
    """``jsonl`` or ``csv`` for a supported archive file name, else None."""
    lower = name.lower()
    return next((fmt for suffix, fmt in SUFFIXES.items() if lower.endswith(suffix)), None)


def plain(value: Any) -> Any:
    """A JSON-safe value: dates as ISO 8601, decimals and UUIDs as text, bytes as base64."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):  # json/jsonb columns keep their structure
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):  # arrays
        return [plain(v) for v in value]
    return str(value)


def encode_key(value: Any) -> Any:
    """A batch's key as JSON that gives the same key back (``decode_key``): bytes become
    ``{"base64": …}`` (a BINARY/bytea key must be looked up as bytes, not as text)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    return plain(value)


def decode_key(value: Any) -> Any:
    """The key ``encode_key`` wrote."""
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value


def _csv_value(value: Any) -> Any:
    flat = plain(value)
    return json.dumps(flat, ensure_ascii=False) if isinstance(flat, dict | list) else flat


@dataclass
class Entry:
    start: int
    end: int
    first_key: Any
    last_key: Any
    rows: int
    #: its DELETE committed (a commit mark follows its line in the index)
    committed: bool = False


def _private(path: Path, flags: int) -> int:
    """Open ``path`` (created mode 0600: an index names the archived rows' keys)."""
    return os.open(path, flags | os.O_CREAT, 0o600)


class ArchiveFile:
    """One archive file and its sidecar index (``.<name>.wkindex``), opened for appending."""

    def __init__(self, path: Path) -> None:
        fmt = file_format(path.name)
        if fmt is None:
            raise TaskFailed(f"{path.name}: archive files end in " + " or ".join(SUFFIXES))
        self.path = path
        self.format = fmt
        self.index = path.with_name(f".{path.name}.wkindex")
        self.entries: list[Entry] = []
        #: a CSV file's header (its columns), once read
        self.header: list[str] | None = None

    def open(self, committed: Callable[[Any], bool]) -> int:
        """Reconcile with the source after a possible crash; return the rows dropped.

        ``committed(first_key)`` says whether a batch's DELETE committed (its first key is
        gone from the source). Only the last batch can be uncommitted, and only when no commit
        mark follows it; it is the only one asked about."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = self._size()
        entries = self._read_index()
        if entries is None:
            if size:
                raise TaskFailed(
                    f"archive {self.path} has no index ({self.index.name}), so what it holds "
                    "cannot be checked against the source; refusing to write to it (restore "
                    "the index, or move the archive away to start a new one)")
            entries = []
        dropped = 0
        if entries and not entries[-1].committed \
                and not committed(decode_key(entries[-1].first_key)):
            dropped = entries.pop().rows  # written, but its DELETE never committed
        for entry in entries:
            entry.committed = True
        end = entries[-1].end if entries else 0
        if size < end:
            raise TaskFailed(
                f"archive {self.path} is shorter ({size} bytes) than its index records "
                f"({end} bytes): it was truncated or replaced, and rows it should hold may be "
                "gone; refusing to write to it (restore it, or move it and its index "
                f"{self.index.name} away to start a new archive)")
        if size > end:  # a batch written but never indexed, so never deleted
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        self.entries = entries
        self._write_index()
        return dropped

    def pending(self) -> bool:
        """Whether a crash may have left something here that ``open`` would take out: a last
        batch with no commit mark, or bytes past the last indexed batch. An archive with no
        index is not one of ours to touch (False)."""
        try:
            entries = self._read_index()
        except TaskFailed:
            return True  # let open() say what is wrong
        if entries is None:
            return False
        return bool(entries and not entries[-1].committed) or \
            self._size() > (entries[-1].end if entries else 0)

    def append(self, rows: list[dict[str, Any]], first_key: Any, last_key: Any) -> int:
        """Append one batch durably (data, then index); return the file's new size."""
        start = self._size()
        if self.format == "csv" and start:
            self._check_header(list(rows[0]))
        payload = self._encode(rows, header=not self.entries and start == 0)
        # archived rows are data: readable by the owner only, like backups
        fd = _private(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            data = memoryview(gzip.compress(payload, compresslevel=6))
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError:
                # e.g. a full disk: the batch fails and is rolled back, so its half-written
                # member goes now (no index line names it yet): the file stays readable
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                    if start == 0:  # not even an empty file, which no gzip reader takes
                        self.path.unlink()
                raise
            end = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        if start == 0:
            sync_folder(self.path.parent)
        self._record(Entry(start, end, encode_key(first_key), encode_key(last_key), len(rows)))
        return end

    def _check_header(self, columns: list[str]) -> None:
        """A CSV file's rows must have its header's columns, in its order: rows of a table
        whose columns changed since the file was started would sit under the wrong names."""
        if self.header is None:
            with gzip.open(self.path, "rt", encoding="utf-8", newline="") as fh:
                self.header = next(csv.reader(fh), [])
        if columns != self.header:
            raise TaskFailed(
                f"the rows have the columns {', '.join(columns)}, but the archive {self.path} "
                f"was started with the header {', '.join(self.header)} (the table changed "
                "since): its rows would sit under the wrong names; refusing to append to it "
                "(archive to a new file, e.g. with {date} or {time} in archive_to, or move "
                "this one and its index away)")

    def mark_committed(self) -> None:
        """Record that the last batch's DELETE committed: from now on no crash, and no new
        row taking its first key, can make a later ``open`` take it back out."""
        if self.entries and not self.entries[-1].committed:
            self._index_line({"committed": self.entries[-1].end})
            self.entries[-1].committed = True

    def _record(self, entry: Entry) -> None:
        """Append the batch's line to the index, durably, once its data is durable."""
        line = {k: v for k, v in entry.__dict__.items() if k != "committed"}
        self._index_line(line)
        self.entries.append(entry)

    def _index_line(self, item: dict[str, Any]) -> None:
        with os.fdopen(_private(self.index, os.O_WRONLY | os.O_APPEND), "a",
                       encoding="utf-8") as fh:
            fh.write(json.dumps(item) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def _encode(self, rows: list[dict[str, Any]], header: bool) -> bytes:
        if self.format == "jsonl":
            return "".join(json.dumps({k: plain(v) for k, v in r.items()},
                                      ensure_ascii=False) + "\n" for r in rows).encode()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
        return out.getvalue().encode()

    def _read_index(self) -> list[Entry] | None:
        """The index's batches, with their commit marks; None when there is no index. A torn
        last line (a crash while it was written) is left out; a damaged line before it makes
        the archive unusable (TaskFailed)."""
        if not self.index.exists():
            return None
        entries: list[Entry] = []
        lines = self.index.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                if isinstance(item, dict) and set(item) == {"committed"}:
                    if entries and entries[-1].end == item["committed"]:
                        entries[-1].committed = True
                    continue
                entries.append(Entry(**item))
            except (ValueError, TypeError):
                if number == len(lines):
                    break  # a torn last line: the batch it described was never deleted
                raise TaskFailed(f"the index {self.index} of archive {self.path} is damaged "
                                 f"at line {number}; refusing to write to the archive") from None
        return entries

    def _write_index(self) -> None:
        tmp = self.index.with_name(self.index.name + ".tmp")
        with os.fdopen(_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e.__dict__) + "\n" for e in self.entries)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.index)
        sync_folder(self.index.parent)


class ParquetArchive(ArchiveFile):
    """A folder of Parquet part files (``part-000001.parquet``…), one per batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.index = path / ".wkindex"
        #: column -> DuckDB type, the same for every part
        self.schema: dict[str, str] | None = None

    def _size(self) -> int:
        return len(self.entries)

    def _parts(self) -> dict[int, Path]:
        return {int(m[1]): p for p in self.path.iterdir()
                if (m := _PART.fullmatch(p.name))} if self.path.is_dir() else {}

    def open(self, committed: Callable[[Any], bool]) -> int:
        self.path.mkdir(parents=True, exist_ok=True)
        parts = self._parts()
        entries = self._read_index()
        if entries is None:
            if parts:
                raise TaskFailed(
                    f"archive {self.path} has no index ({self.index.name}), so its parts "
                    "cannot be checked against the source; refusing to write to it (restore "
                    "the index, or move the folder away to start a new archive)")
            entries = []
        dropped = 0
        if entries and not entries[-1].committed \
                and not committed(decode_key(entries[-1].first_key)):
            dropped = entries.pop().rows  # written, but its DELETE never committed
        for entry in entries:
            entry.committed = True
        missing = [self._part(e.start) for e in entries if e.start not in parts]
        if missing:
            raise TaskFailed(
                f"archive {self.path} lacks part(s) its index records ({', '.join(missing[:3])}"
                f"{', …' if len(missing) > 3 else ''}): rows it should hold may be gone; "
                "refusing to write to it (restore them, or move the folder away to start a "
                "new archive)")
        last = entries[-1].start if entries else 0
        for number, part in parts.items():  # parts of batches never committed
            if number > last:
                part.unlink()
        for part in self.path.iterdir():  # half-written ones
            if _STAGING.fullmatch(part.name):
                part.unlink()
        self.entries = entries
        self._write_index()
        return dropped

    def pending(self) -> bool:
        if not self.path.is_dir():
            return False
        try:
            entries = self._read_index()
        except TaskFailed:
            return True
        if entries is None:
            return False
        last = entries[-1].start if entries else 0
        return bool(entries and not entries[-1].committed) or \
            any(n > last for n in self._parts()) or \
            any(_STAGING.fullmatch(p.name) for p in self.path.iterdir())

    @staticmethod
    def _part(number: int) -> str:
        return f"part-{number:06d}.parquet"

    def _types(self, con: Any, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Every part's column types: those of the archive's first part (readers take a
        dataset's schema from its first file), else decided from this batch's values; a
        column with only NULLs so far is text. Never guessed from text (a note that reads
        like a date stays text)."""
        if self.schema is None:
            self.schema = {}
            if self.entries:
                first = self.path / self._part(self.entries[0].start)
                for name, kind, *_ in con.execute(
                        "DESCRIBE SELECT * FROM read_parquet(?)", [str(first)]).fetchall():
                    self.schema[name] = "VARCHAR" if kind in ("NULL", '"NULL"') else kind
        names = dict.fromkeys(k for r in rows for k in r)
        if self.entries and set(names) != set(self.schema):
            raise TaskFailed(
                f"the rows have the columns {', '.join(names)}, but the archive {self.path} "
                f"was started with the columns {', '.join(self.schema)} (the table changed "
                "since): a part with other columns does not read as one dataset with the "
                "others; refusing to append to it (archive to a new folder, e.g. with {date} "
                "or {time} in archive_to, or move this one away)")
        for name in names:
            if name not in self.schema:
                self.schema[name] = _duckdb_type([r.get(name) for r in rows])
        return self.schema

    def append(self, rows: list[dict[str, Any]], first_key: Any, last_key: Any) -> int:
        from wellkept.connectors._drivers import require

        duckdb = require("duckdb", "duckdb", "Archiving to Parquet")
        number = (self.entries[-1].start + 1) if self.entries else 1
        final = self.path / self._part(number)
        staging = self.path / f".{final.name}.jsonl"
        tmp = self.path / f".{final.name}.tmp"
        con = duckdb.connect()
        try:
            types = self._types(con, rows)
            staging.write_text("".join(
                json.dumps({k: _parquet_value(r.get(k), t) for k, t in types.items()},
                           ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            columns = ", ".join(f"{_sql_text(k)}: {_sql_text(t)}" for k, t in types.items())
            con.execute("COPY (SELECT * FROM read_json(?, format = 'newline_delimited', "
                        f"columns = {{{columns}}})) TO {_sql_text(str(tmp))} (FORMAT parquet)",
                        [str(staging)])
        except duckdb.Error as exc:  # e.g. a value that does not fit its column's type
            tmp.unlink(missing_ok=True)
            raise TaskFailed(f"writing {final.name} of the archive {self.path}: "
                             f"{str(exc).splitlines()[0]}") from None
        finally:
            con.close()
            staging.unlink(missing_ok=True)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        sync_folder(self.path)
        self._record(Entry(number, number, encode_key(first_key), encode_key(last_key),
                           len(rows)))
        return number


def _duckdb_type(values: list[Any]) -> str:
    """The Parquet column type for a column's values (by their Python types)."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if not kinds:
        return "VARCHAR"
    if kinds == {bool}:
        return "BOOLEAN"
    if kinds == {int}:
        return "BIGINT" if all(-(2 ** 63) <= v < 2 ** 63 for v in present) else "VARCHAR"
    if kinds <= {int, float}:
        return "DOUBLE"
    if all(issubclass(k, datetime) for k in kinds):
        aware = {v.tzinfo is not None for v in present}
        return {frozenset({True}): "TIMESTAMPTZ", frozenset({False}): "TIMESTAMP"}.get(
            frozenset(aware), "VARCHAR")
    if kinds == {date}:
        return "DATE"
    if all(issubclass(k, dict | list | tuple) for k in kinds):
        return "JSON"
    return "VARCHAR"


def _parquet_value(value: Any, kind: str) -> Any:
    """A value as the staging JSON line carries it for a column of type ``kind``."""
    flat = plain(value)
    if kind == "VARCHAR" and flat is not None and not isinstance(flat, str):
        return json.dumps(flat, ensure_ascii=False)
    return flat


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_archive(path: Path) -> ArchiveFile:
    """The archive writer for ``path``'s format."""
    return ParquetArchive(path) if file_format(path.name) == "parquet" else ArchiveFile(path)
