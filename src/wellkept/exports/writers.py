"""Streaming writers for exports: CSV, JSON lines, Parquet; gzip or zstd around the text ones.

Text formats are written row batch by row batch through the compressor into the file, so an
export of any size holds one batch in memory. Parquet is written by DuckDB from a JSON-lines
staging file (the same path the cleanup archives take), typed by DuckDB's reader.
"""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, cast

from wellkept.fs.compress import writer as compressor

FORMATS = {".csv": ("csv", None), ".csv.gz": ("csv", "gzip"), ".csv.zst": ("csv", "zstd"),
           ".jsonl": ("jsonl", None), ".jsonl.gz": ("jsonl", "gzip"),
           ".jsonl.zst": ("jsonl", "zstd"), ".parquet": ("parquet", None)}


def format_of(name: str) -> tuple[str, str | None] | None:
    lower = name.lower()
    return next((v for suffix, v in sorted(FORMATS.items(), key=lambda kv: -len(kv[0]))
                 if lower.endswith(suffix)), None)


class _Counting(io.RawIOBase):
    """Counts what is written (into a file, or nowhere for a dry run)."""

    def __init__(self, target: BinaryIO | None) -> None:
        self.target, self.count = target, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        self.count += size
        if self.target is not None:
            self.target.write(data)
        return size


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)  # 1.50, -0.001, 1E+2: each a JSON number
    return json.dumps(value, default=_json_default, ensure_ascii=False)


class RowWriter:
    """Write rows (lists in ``names`` order) as ``fmt`` into ``target`` (None: count only)."""

    def __init__(self, target: BinaryIO | None, fmt: str, compression: str | None,
                 names: list[str], *, delimiter: str = ",", header: bool = True,
                 null: str = "") -> None:
        self.fmt, self.names, self.null = fmt, names, null
        self.raw = _Counting(target)
        self.stream: Any = (compressor(cast(BinaryIO, self.raw), compression, None)  # type: ignore[arg-type]
                            if compression else io.BufferedWriter(self.raw))
        self.text = io.TextIOWrapper(cast(Any, self.stream), encoding="utf-8", newline="",
                                     write_through=True)
        self.csv = csv.writer(self.text, delimiter=delimiter, lineterminator="\n")
        if fmt == "csv" and header:
            self.csv.writerow(names)

    def write(self, rows: list[list[Any]]) -> None:
        if self.fmt == "csv":
            self.csv.writerows([self.null if v is None else v for v in r] for r in rows)
        else:
            self.text.write("".join(self._json_line(r) + "\n" for r in rows))

    def _json_line(self, row: list[Any]) -> str:
        """One object, as ``json.dumps`` writes it, but with decimals written as the exact
        numbers they are (1.50, 12345678901234567.89), never through a float."""
        if not any(isinstance(v, Decimal) for v in row):
            return json.dumps(dict(zip(self.names, row, strict=True)), default=_json_default,
                              ensure_ascii=False)
        return "{" + ", ".join(f"{json.dumps(n, ensure_ascii=False)}: {_json_value(v)}"
                               for n, v in zip(self.names, row, strict=True)) + "}"

    def close(self) -> int:
        """Finish the stream; return the bytes written (compressed)."""
        self.text.flush()
        self.text.detach()
        self.stream.flush()
        if not isinstance(self.stream, io.BufferedWriter):
            self.stream.close()  # ends the compressed stream; the file stays open
        return self.raw.count


def parquet_from_jsonl(staging: Path, out: Path, names: list[str]) -> None:
    """Convert a JSON-lines staging file to Parquet (zstd) with DuckDB, columns in order."""
    from wellkept.connectors._drivers import require

    duckdb = require("duckdb", "duckdb", "Exporting to Parquet")
    con = duckdb.connect()
    try:
        cols = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
        src = str(staging).replace("'", "''")
        dst = str(out).replace("'", "''")
        if os.path.getsize(staging):
            con.execute(f"COPY (SELECT {cols} FROM read_json_auto('{src}')) TO '{dst}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
        else:  # no rows: an empty file with the columns, typed as text
            empty = ", ".join(f"NULL::VARCHAR AS {c}" for c in cols.split(", "))
            con.execute(f"COPY (SELECT {empty} LIMIT 0) TO '{dst}' (FORMAT parquet)")
    finally:
        con.close()
