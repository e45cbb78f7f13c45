"""Archive files for `cleanup`: rows written, made durable, and only then deleted.

A `.parquet` archive is a folder of part files, one per batch (what DuckDB, pyarrow and Spark
read as one dataset), written through DuckDB under a temporary name, fsynced and renamed; the
same index records the parts, and the same reconciliation deletes uncommitted ones.

Each batch is appended to the file as one gzip member (`.jsonl.gz`: one JSON object per row;
`.csv.gz`: a header in the file's first member, then rows) and fsynced, and a line describing
it (byte range, first and last key, row count) is appended to a sidecar index, also fsynced.
Only then does the batch's DELETE commit.

A crash can therefore leave batches at the end of the file whose DELETE never committed. Batches
commit in order, so those form a suffix of the index, and a batch committed exactly when its
first key is gone from the source table. Before writing, `open` walks the index backwards,
truncates the file and the index after the last committed batch, and drops any bytes past the
last indexed one: no row is archived twice, and no deleted row is missing from the archive.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from wellkept.errors import TaskFailed

SUFFIXES = {".jsonl.gz": "jsonl", ".csv.gz": "csv", ".parquet": "parquet"}


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

    def open(self, committed: Callable[[Any], bool]) -> int:
        """Reconcile with the source after a possible crash; return the rows dropped.

        ``committed(first_key)`` says whether a batch's DELETE committed (its first key is
        gone from the source)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries = self._read_index()
        dropped = 0
        while self.entries and not committed(self.entries[-1].first_key):
            dropped += self.entries.pop().rows
        end = self.entries[-1].end if self.entries else 0
        if self.path.exists() and self.path.stat().st_size != end:
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        self._write_index()
        return dropped

    def append(self, rows: list[dict[str, Any]], first_key: Any, last_key: Any) -> int:
        """Append one batch durably (data, then index); return the file's new size."""
        payload = self._encode(rows, header=not self.entries and self._size() == 0)
        start = self._size()
        # archived rows are data: readable by the owner only, like backups
        with os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
                       "ab") as fh:
            fh.write(gzip.compress(payload, compresslevel=6))
            fh.flush()
            os.fsync(fh.fileno())
            end = fh.tell()
        self._record(Entry(start, end, plain(first_key), plain(last_key), len(rows)))
        return end

    def _record(self, entry: Entry) -> None:
        """Append the batch's line to the index, durably, once its data is durable."""
        with self.index.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry.__dict__) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries.append(entry)

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

    def _read_index(self) -> list[Entry]:
        if not self.index.exists():
            return []
        entries = []
        for line in self.index.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(Entry(**json.loads(line)))
            except (ValueError, TypeError):
                break  # a torn last line: the batch it described is not trusted
        size = self._size()
        return [e for e in entries if e.end <= size]

    def _write_index(self) -> None:
        tmp = self.index.with_name(self.index.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e.__dict__) + "\n" for e in self.entries)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.index)


class ParquetArchive(ArchiveFile):
    """A folder of Parquet part files (``part-000001.parquet``…), one per batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.index = path / ".wkindex"

    def _size(self) -> int:
        return len(self.entries)

    def open(self, committed: Callable[[Any], bool]) -> int:
        self.path.mkdir(parents=True, exist_ok=True)
        self.entries = self._read_index()
        dropped = 0
        while self.entries and not committed(self.entries[-1].first_key):
            dropped += self.entries.pop().rows
        keep = {self._part(e.start) for e in self.entries}
        for part in self.path.iterdir():  # uncommitted, orphaned or half-written parts
            if part.name != self.index.name and part.name not in keep:
                part.unlink()
        self._write_index()
        return dropped

    def _read_index(self) -> list[Entry]:
        entries = []
        if self.index.exists():
            for line in self.index.read_text(encoding="utf-8").splitlines():
                try:
                    entries.append(Entry(**json.loads(line)))
                except (ValueError, TypeError):
                    break
        return [e for e in entries if (self.path / self._part(e.start)).exists()]

    @staticmethod
    def _part(number: int) -> str:
        return f"part-{number:06d}.parquet"

    def append(self, rows: list[dict[str, Any]], first_key: Any, last_key: Any) -> int:
        from wellkept.connectors._drivers import require

        duckdb = require("duckdb", "duckdb", "Archiving to Parquet")
        number = (self.entries[-1].start + 1) if self.entries else 1
        final = self.path / self._part(number)
        staging = self.path / f".{final.name}.jsonl"
        tmp = self.path / f".{final.name}.tmp"
        staging.write_text("".join(json.dumps({k: plain(v) for k, v in r.items()},
                                              ensure_ascii=False) + "\n" for r in rows),
                           encoding="utf-8")
        try:
            con = duckdb.connect()
            try:
                con.execute("COPY (SELECT * FROM read_json_auto(?)) TO '"
                            + str(tmp).replace("'", "''") + "' (FORMAT parquet)",
                            [str(staging)])
            finally:
                con.close()
        finally:
            staging.unlink(missing_ok=True)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        self._record(Entry(number, number, plain(first_key), plain(last_key), len(rows)))
        return number


def open_archive(path: Path) -> ArchiveFile:
    """The archive writer for ``path``'s format."""
    return ParquetArchive(path) if file_format(path.name) == "parquet" else ArchiveFile(path)
