"""The export's columns: which source column (or constant) each comes from, and its format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from wellkept.archive_file import plain
from wellkept.errors import TaskFailed


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    source: str | None
    value: Any
    date_format: str | None
    decimals: int | None
    mapping: dict[str, Any]


class Formatter:
    """Turns a source row (tuple in query order) into the export's values, in column order."""

    def __init__(self, specs: Sequence[ColumnSpec], columns: list[str], *, zone: ZoneInfo,
                 date_format: str | None, datetime_format: str | None,
                 decimals: int | None) -> None:
        index = {c: i for i, c in enumerate(columns)}
        lower = {c.lower(): i for i, c in enumerate(columns)}
        self.names: list[str] = []
        self._plan: list[tuple[int | None, ColumnSpec | None]] = []
        if not specs:
            self.names = list(columns)
            self._plan = [(i, None) for i in range(len(columns))]
        for spec in specs:
            if spec.source is None:
                self._plan.append((None, spec))
            else:
                pos = index.get(spec.source, lower.get(spec.source.lower()))
                if pos is None:
                    raise TaskFailed(f"columns: {spec.name!r} is from {spec.source!r}, which "
                                     f"the query does not return; it returns: "
                                     f"{', '.join(columns)}")
                self._plan.append((pos, spec))
            self.names.append(spec.name)
        self.zone = zone
        self.date_format, self.datetime_format, self.decimals = (date_format, datetime_format,
                                                                 decimals)

    def row(self, source: tuple[Any, ...]) -> list[Any]:
        out = []
        for pos, spec in self._plan:
            value = spec.value if pos is None else source[pos]  # type: ignore[union-attr]
            out.append(self._format(value, spec))
        return out

    def _format(self, value: Any, spec: ColumnSpec | None) -> Any:
        if spec is not None and spec.mapping and value is not None:
            value = spec.mapping.get(str(value), value)
        if value is None:
            return None
        date_fmt = spec.date_format if spec and spec.date_format else None
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(self.zone)
            fmt = date_fmt or self.datetime_format
            return value.strftime(fmt) if fmt else value.isoformat()
        if isinstance(value, date):
            fmt = date_fmt or self.date_format
            return value.strftime(fmt) if fmt else value.isoformat()
        if isinstance(value, time):
            return value.strftime(date_fmt) if date_fmt else value.isoformat()
        # a column's own decimals apply to every number in it; the default only to numbers
        # that have a fraction (an integer quantity stays an integer)
        places = spec.decimals if spec and spec.decimals is not None else (
            self.decimals if not isinstance(value, int) else None)
        if places is not None and isinstance(value, int | float | Decimal) and not isinstance(
                value, bool):
            try:
                return Decimal(str(value)).quantize(Decimal(1).scaleb(-places),
                                                    rounding=ROUND_HALF_EVEN)
            except InvalidOperation:
                return value
        if isinstance(value, Decimal | int | float | bool | str):
            return value
        return plain(value)
