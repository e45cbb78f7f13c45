"""One month's merge, in DuckDB (an in-memory database; the files are read where they are).

The output is every distinct row of the inputs (exact duplicates dropped), written under a
temporary name. CSV values are read and compared as text, so they are written back as they
were. Before it replaces anything, three things are checked: its row count equals
the rows read minus the duplicates (counted apart from the write), and no input row is missing
from it (``inputs EXCEPT output`` is empty). Then it is fsynced and renamed into place; only
after that may the caller delete the sources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wellkept.connectors._drivers import require
from wellkept.errors import TaskFailed
from wellkept.fs import temp_name
from wellkept.fs.sync import sync_folder


@dataclass(frozen=True)
class Counts:
    rows_read: int
    rows_distinct: int
    per_file: dict[str, int]

    @property
    def duplicates(self) -> int:
        return self.rows_read - self.rows_distinct


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(path: Path) -> str:
    """``path`` as a literal DuckDB's readers take as itself, not as a glob: a daily file
    named ``p-[a]-2026-01-02.csv`` would otherwise be read as ``p-a-2026-01-02.csv`` (or not
    at all) and then deleted. A one-character class escapes each wildcard."""
    text = str(path)
    if any(c in text for c in "*?["):
        text = "".join(f"[{c}]" if c in "*?[" else c for c in text)
    return _literal(text)


def _reader(fmt: str, files: list[Path], *, gzip: bool = False) -> str:
    listed = "[" + ", ".join(_path(f) for f in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({listed}, union_by_name = true)"
    # every CSV value is read as the text it is: DuckDB's type guessing would write 1.50 back
    # as 1.5, round long decimals to a double, cut nanoseconds and move time zones to UTC,
    # and the sources are deleted afterwards. ``gzip``: a gzipped file whose name does not
    # say so (the temporary output)
    options = ", compression = 'gzip'" if gzip else ""
    return (f"read_csv({listed}, union_by_name = true, header = true, all_varchar = true"
            f"{options})")


def file_format(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".parquet"):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz")):
        return "csv"
    return None


class Merger:
    """A DuckDB session for one run's merges."""

    def __init__(self, fmt: str) -> None:
        duckdb = require("duckdb", "duckdb", "consolidate")
        self.fmt = fmt
        self.con: Any = duckdb.connect()
        self._duckdb = duckdb

    def close(self) -> None:
        self.con.close()

    def interrupt(self) -> None:
        self.con.interrupt()

    def columns(self, files: list[Path]) -> list[str]:
        """The columns of the files together (a damaged file fails here, cleanly)."""
        try:
            return [d[0] for d in self.con.execute(
                f"SELECT * FROM {_reader(self.fmt, files)} LIMIT 0").description]
        except self._duckdb.Error as exc:
            raise TaskFailed(f"cannot read the inputs: {str(exc).splitlines()[0]}") from None

    def count(self, files: list[Path]) -> Counts:
        """Rows per input file, and distinct rows over all of them (read only)."""
        try:
            per_file = {str(f): int(self.con.execute(
                f"SELECT count(*) FROM {_reader(self.fmt, [f])}").fetchone()[0]) for f in files}
            distinct = int(self.con.execute(
                f"SELECT count(*) FROM (SELECT DISTINCT * FROM {_reader(self.fmt, files)})"
            ).fetchone()[0])
        except self._duckdb.Error as exc:
            raise TaskFailed(f"cannot read the inputs: {str(exc).splitlines()[0]}") from None
        return Counts(sum(per_file.values()), distinct, per_file)

    def write(self, files: list[Path], final: Path, order_by: list[str], out_fmt: str,
              expected: Counts) -> int:
        """Write the distinct rows to ``final`` (via a temporary file), verified; return its
        size in bytes."""
        tmp = final.with_name(temp_name(final.name))
        tmp.unlink(missing_ok=True)
        source = _reader(self.fmt, files)
        order = (" ORDER BY " + ", ".join(_ident(c) for c in order_by)) if order_by else ""
        gzipped = out_fmt == "csv" and final.name.lower().endswith(".gz")
        options = ("FORMAT parquet, COMPRESSION zstd" if out_fmt == "parquet" else
                   "FORMAT csv, HEADER true" + (", COMPRESSION gzip" if gzipped else ""))
        try:
            self.con.execute(f"COPY (SELECT DISTINCT * FROM {source}{order}) TO "
                             f"{_literal(str(tmp))} ({options})")
            written = _reader(out_fmt, [tmp], gzip=gzipped)
            out_rows = int(self.con.execute(f"SELECT count(*) FROM {written}").fetchone()[0])
            missing = int(self.con.execute(
                f"SELECT count(*) FROM (SELECT * FROM {source} EXCEPT SELECT * FROM {written})"
            ).fetchone()[0])
        except self._duckdb.Error as exc:
            tmp.unlink(missing_ok=True)
            raise TaskFailed(f"merging into {final.name}: {exc}") from None
        if out_rows != expected.rows_read - expected.duplicates or missing:
            tmp.unlink(missing_ok=True)
            raise TaskFailed(
                f"{final.name}: verification failed: wrote {out_rows} rows, expected "
                f"{expected.rows_read} read - {expected.duplicates} duplicates = "
                f"{expected.rows_distinct}; {missing} input rows missing from the output; "
                "the sources are kept")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, final)
        sync_folder(final.parent)
        return final.stat().st_size


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
