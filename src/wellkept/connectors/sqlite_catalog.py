"""SQLite catalog look-ups: every identifier from the config is found here, then quoted.

Nothing from the config reaches SQL text without first matching a name in ``sqlite_master`` or
``PRAGMA table_xinfo``; values always travel as parameters.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wellkept.errors import TaskFailed

ROWID_ALIASES = ("rowid", "_rowid_", "oid")
#: text a date column may hold: ISO 8601, a date alone or with a time (T or a space), with
#: optional fractions of a second and a UTC offset
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                      r"(Z|[+-]\d{2}(:?\d{2})?)?)?")


def quote(identifier: str) -> str:
    """Quote an SQLite identifier (embedded double quotes are doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class TimeFormat:
    """How a date column stores time, so the cutoff compares like for like (and uses indexes).

    Text columns hold ISO 8601 (with ``T`` or a space, or a bare date); numeric columns hold Unix
    time in seconds or milliseconds. Naive values are taken as UTC, as Django stores them.
    """

    kind: str = "text"
    separator: str = " "
    date_only: bool = False
    scale: int = 1

    def render(self, moment: datetime) -> str | float:
        utc = moment.astimezone(UTC)
        if self.kind == "epoch":
            return utc.timestamp() * self.scale
        if self.date_only:
            return utc.strftime("%Y-%m-%d")
        return utc.strftime(f"%Y-%m-%d{self.separator}%H:%M:%S")

    @classmethod
    def detect(cls, sample: Any) -> TimeFormat:
        if isinstance(sample, int | float):
            return cls(kind="epoch", scale=1000 if abs(sample) > 1e11 else 1)
        text = str(sample) if sample is not None else ""
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return cls(date_only=True)
        return cls(separator="T" if len(text) > 10 and text[10] == "T" else " ")


@dataclass(frozen=True)
class PurgePlan:
    """The checked, quoted pieces of a batched delete on one table."""

    table: str
    column: str
    key: str
    key_label: str
    time_format: TimeFormat
    #: lower-case name -> the catalog's spelling, for checking `where` columns
    columns: dict[str, str]
    real_table: str = ""

    def batch_sql(self, extra: str = "", first: bool = False) -> tuple[str, str]:
        after = "" if first else f"{self.key} > ? AND "
        select = (f"SELECT {self.key} FROM {self.table} NOT INDEXED WHERE {after}"
                  f"{self.column} < ?{extra} ORDER BY {self.key} LIMIT ?")
        delete = (f"DELETE FROM {self.table} WHERE {self.key} BETWEEN ? AND ? "
                  f"AND {self.column} < ?{extra}")
        return select, delete

    def archive_sql(self, archive: str, extra: str = "") -> str:
        cols = ", ".join(quote(c) for c in self.columns.values())
        return (f"INSERT INTO {quote(archive)} ({cols}) SELECT {cols} FROM {self.table} "
                f"WHERE {self.key} BETWEEN ? AND ? AND {self.column} < ?{extra}")


class Catalog:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def tables(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]

    def indexes(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name")]

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])

    def analyzed_rows(self) -> dict[str, int]:
        """Rows per table as of the last ANALYZE (from sqlite_stat1), keyed by lower-case name."""
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        if not exists:
            return {}
        out: dict[str, int] = {}
        for tbl, stat in self.conn.execute("SELECT tbl, stat FROM sqlite_stat1"):
            head = str(stat or "").split(" ", 1)[0]
            if head.isdigit():
                out[tbl.lower()] = max(out.get(tbl.lower(), 0), int(head))
        return out

    def object_sizes(self) -> dict[str, int]:
        """Bytes per table and index from the dbstat table, or {} where SQLite lacks it."""
        try:
            rows = self.conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            return {r[0]: int(r[1]) for r in rows}
        except sqlite3.OperationalError:
            return {}

    def find_table(self, name: str) -> tuple[str, str]:
        row = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND lower(name) = lower(?)",
            (name,)).fetchone()
        if row is None:
            raise TaskFailed(f"table {name!r} does not exist; tables: "
                             + (", ".join(self.tables()) or "(none)"))
        return row[0], row[1] or ""

    def columns(self, table: str) -> list[tuple[str, int]]:
        """(name, position in the primary key) for each column."""
        return [(r[1], r[5]) for r in self.conn.execute(f"PRAGMA table_xinfo({quote(table)})")]

    def purge_plan(self, table: str, column: str) -> PurgePlan:
        real_table, _ddl = self.find_table(table)
        cols = self.columns(real_table)
        names = {c.lower(): c for c, _ in cols}
        if column.lower() not in names:
            raise TaskFailed(f"table {real_table!r} has no column {column!r}; columns: "
                             + ", ".join(c for c, _ in cols))
        real_column = names[column.lower()]
        key, label = self._key(real_table, cols, names)
        sample = self.conn.execute(
            f"SELECT {quote(real_column)} FROM {quote(real_table)} "
            f"WHERE {quote(real_column)} IS NOT NULL LIMIT 1").fetchone()
        if sample and not isinstance(sample[0], int | float) and \
                not ISO_TIME.fullmatch(str(sample[0])):
            # compared as text, only ISO 8601 sorts like time: Unix seconds stored as text,
            # or 28/10/2026, would match rows by their digits, fresh ones too
            raise TaskFailed(
                f"column {real_column!r} of {real_table!r} holds {str(sample[0])[:40]!r}, "
                "not an ISO 8601 date or time (YYYY-MM-DD[ HH:MM:SS]) nor a Unix time "
                "number; cleanup cannot compare it with the cutoff, refusing")
        return PurgePlan(table=quote(real_table), column=quote(real_column), key=key,
                         key_label=label,
                         time_format=TimeFormat.detect(sample[0] if sample else None),
                         columns={c.lower(): c for c, _ in cols if c}, real_table=real_table)

    def ensure_archive(self, plan: PurgePlan, archive: str) -> None:
        """Create the archive table like the source when it is missing (inside the caller's
        transaction); when it exists, it must have every column of the source."""
        row = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                "lower(name) = lower(?)", (archive,)).fetchone()
        if row is None:
            self.conn.execute(f"CREATE TABLE {quote(archive)} AS SELECT * FROM {plan.table} "
                              "WHERE 0")
            return
        have = {c.lower() for c, _ in self.columns(row[0])}
        missing = [c for c in plan.columns.values() if c.lower() not in have]
        if missing:
            raise TaskFailed(f"archive table {row[0]!r} lacks column(s) of {plan.real_table!r}: "
                             + ", ".join(missing))

    def _without_rowid(self, table: str) -> bool:
        """Ask SQLite (pragma table_list, 3.37+); on older versions, probe the rowid."""
        try:
            row = self.conn.execute("SELECT wr FROM pragma_table_list(?)", (table,)).fetchone()
            return bool(row and row[0])
        except sqlite3.OperationalError:
            pass
        for alias in ROWID_ALIASES:
            try:
                self.conn.execute(f"SELECT {alias} FROM {quote(table)} LIMIT 0")
                return False
            except sqlite3.OperationalError:
                continue
        return True

    def _key(self, table: str, cols: list[tuple[str, int]],
             names: dict[str, str]) -> tuple[str, str]:
        """The key batches walk: the rowid (under an alias no column shadows), else the
        single-column primary key of a WITHOUT ROWID table."""
        if not self._without_rowid(table):
            for alias in ROWID_ALIASES:
                if alias not in names:
                    return alias, "rowid"
        pk = [c for c, pos in cols if pos > 0]
        if len(pk) == 1:
            return quote(pk[0]), pk[0]
        raise TaskFailed(f"table {table!r} has no usable key for batched deletes (it needs a "
                         "rowid or a single-column primary key); refusing to clean it")
