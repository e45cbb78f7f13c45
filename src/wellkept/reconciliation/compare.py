"""Spill both sides to a scratch SQLite file, then compare by key there.

Each record is stored as (key, JSON of its fields) in a table per side; a key seen twice on a
side is a duplicate, counted and listed, and its first record is the one compared. Missing
keys are found with anti-joins and the common keys are walked with one join, field by field,
so memory holds one row at a time whatever the sizes. Values are compared as numbers (with
the field's tolerance) when both sides read as numbers, else as text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from wellkept.errors import TaskFailed

SIDES = ("left", "right")
#: scratch table of each side (LEFT and RIGHT are SQL keywords)
TABLE = {"left": "side_l", "right": "side_r"}


@dataclass(frozen=True)
class Tolerance:
    absolute: Decimal = Decimal(0)
    relative: Decimal = Decimal(0)

    @classmethod
    def parse(cls, value: float | str) -> Tolerance:
        text = str(value).strip()
        try:
            if text.endswith("%"):
                return cls(relative=Decimal(text[:-1]) / 100)
            return cls(absolute=Decimal(text))
        except InvalidOperation:
            raise ValueError(f"tolerance {value!r}: a number (0.01) or a percentage "
                             "(0.5%)") from None

    def allows(self, a: Decimal, b: Decimal) -> bool:
        diff = abs(a - b)
        return diff <= self.absolute or diff <= self.relative * max(abs(a), abs(b))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _text(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def key_text(value: Any) -> str:
    """One key part as text, so that 5, 5.0, Decimal('5.00') and '5' are one key (but '007'
    stays '007': a zero-padded code is not a number)."""
    if value is None:
        return ""
    if isinstance(value, str):
        number = _number(value) if _PLAIN_NUMBER.fullmatch(value) else None
    else:
        number = _number(value)
    if number is not None:
        return format(number.normalize(), "f")
    return str(_text(value))


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    field_counts: dict[str, int] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        c = self.counts
        return not (c["missing_left"] or c["missing_right"] or c["mismatched"]
                    or c["duplicates_left"] or c["duplicates_right"])


class Spill:
    """The scratch database holding both sides."""

    def __init__(self, folder: Path, key: list[str]) -> None:
        self.key = key
        self.db = sqlite3.connect(folder / "reconcile.db")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        for side in SIDES:
            self.db.execute(f"CREATE TABLE {TABLE[side]} (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            self.db.execute(f"CREATE TABLE {TABLE[side]}_dup (k TEXT NOT NULL)")
        self.rows = {side: 0 for side in SIDES}

    def close(self) -> None:
        self.db.close()

    def add(self, side: str, batch: list[dict[str, Any]]) -> None:
        rows = []
        for record in batch:
            try:
                parts = [key_text(record[k]) for k in self.key]
            except KeyError as exc:
                raise TaskFailed(f"{side}: a record has no key field {exc}; its fields: "
                                 f"{', '.join(record)}") from None
            rows.append((json.dumps(parts, ensure_ascii=False),
                         json.dumps({k: _text(v) for k, v in record.items()
                                     if k not in self.key}, ensure_ascii=False)))
        with self.db:
            for k, v in rows:
                cur = self.db.execute(f"INSERT OR IGNORE INTO {TABLE[side]} VALUES (?, ?)",
                                      (k, v))
                if cur.rowcount == 0:
                    self.db.execute(f"INSERT INTO {TABLE[side]}_dup VALUES (?)", (k,))
        self.rows[side] += len(batch)

    def compare(self, fields: list[str] | None, tolerances: dict[str, Tolerance],
                default: Tolerance, cap: int) -> Report:
        report = Report()
        c = report.counts
        c["rows_left"], c["rows_right"] = self.rows["left"], self.rows["right"]
        for side in SIDES:
            c[f"duplicates_{side}"] = self._scalar(f"SELECT count(*) FROM {TABLE[side]}_dup")
            report.duplicates[side] = [self._key(k) for (k,) in self.db.execute(
                f"SELECT DISTINCT k FROM {TABLE[side]}_dup ORDER BY k LIMIT ?", (cap,))]
        for side, other, name in (("left", "right", "missing_right"),
                                  ("right", "left", "missing_left")):
            query = (f"FROM {TABLE[side]} a WHERE NOT EXISTS (SELECT 1 FROM {TABLE[other]} b "
                     "WHERE b.k = a.k)")
            c[name] = self._scalar(f"SELECT count(*) {query}")
            report.missing[name] = [{"key": self._key(k), "record": json.loads(v)}
                                    for k, v in self.db.execute(
                                        f"SELECT a.k, a.v {query} ORDER BY a.k LIMIT ?", (cap,))]
        c["keys_matched"] = c["mismatched"] = 0
        for k, left_v, right_v in self._pairs():
            c["keys_matched"] += 1
            left, right = json.loads(left_v), json.loads(right_v)
            names = fields if fields is not None else sorted(set(left) & set(right))
            diffs = []
            for name in names:
                a, b = left.get(name), right.get(name)
                if not _same(a, b, tolerances.get(name, default)):
                    diffs.append({"field": name, "left": a, "right": b})
                    report.field_counts[name] = report.field_counts.get(name, 0) + 1
            if diffs:
                c["mismatched"] += 1
                if len(report.mismatched) < cap:
                    report.mismatched.append({"key": self._key(k), "differences": diffs})
        return report

    def _pairs(self) -> Iterator[tuple[str, str, str]]:
        yield from self.db.execute(
            "SELECT l.k, l.v, r.v FROM side_l l JOIN side_r r ON r.k = l.k ORDER BY l.k")

    def _scalar(self, query: str) -> int:
        return int(self.db.execute(query).fetchone()[0])

    def _key(self, k: str) -> Any:
        parts = json.loads(k)
        return parts[0] if len(parts) == 1 else dict(zip(self.key, parts, strict=True))


def _same(a: Any, b: Any, tolerance: Tolerance) -> bool:
    if a is None or b is None:
        return a is None and b is None
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y or tolerance.allows(x, y)
    return str(a) == str(b)
