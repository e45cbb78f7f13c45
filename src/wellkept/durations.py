"""Durations as users write them in the config: ``30s``, ``15min``, ``12h``, ``30d``, ``2w``.

A bare number is refused on purpose: ``retention: 30`` could mean seconds or days, and guessing
wrong on a retention deletes data. ``m`` is refused too (minutes or months?); write ``min``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")
HINT = "write a number and a unit (ms, s, min, h, d, w), e.g. 30s, 15min, 12h, 30d, 2w"


def parse_duration(text: object) -> timedelta:
    """Parse ``"1h30min"`` and friends into a timedelta; raise ValueError with a hint otherwise."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: {HINT}")
    raw = text.strip().lower()
    pos, total, matched = 0, 0.0, False
    while pos < len(raw):
        m = _PART.match(raw, pos)
        if not m or m.group(2) not in _UNITS:
            raise ValueError(f"invalid duration {text!r}: {HINT}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos, matched = m.end(), True
    if not matched:
        raise ValueError(f"invalid duration {text!r}: {HINT}")
    return timedelta(seconds=total)


def format_duration(value: timedelta | float) -> str:
    """The shortest exact spelling in the config's own units (``90d``, ``15min``, ``1.5s``)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    # fixed-point, never an exponent (``1e-05s`` would not parse back)
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"



#: a pydantic field type for durations written as ``30d`` (config and task parameters)
Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
