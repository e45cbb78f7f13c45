"""Sizes as users write them (``100M``, ``10k``, ``1.5GiB``, ``4096`` bytes), and file modes
(``'0640'``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4,
          "tb": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.I)
HINT = "write bytes or a number and a unit (k, M, G; as logrotate does), e.g. 100M or 512k"


def parse_size(value: object) -> int:
    """``100M`` -> 104857600. Units are binary (1k = 1024 bytes), as in logrotate."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: {HINT}")
    if isinstance(value, float) and value.is_integer():  # YAML's 1048576.0
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: sizes are not negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid size {value!r}: {HINT}")
    m = _SIZE.fullmatch(value)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"invalid size {value!r}: {HINT}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


#: a pydantic field type for sizes written as ``100M``
ByteSize = Annotated[int, BeforeValidator(parse_size)]


def check_mode(value: str, maximum: int = 0o7777) -> str:
    """An octal file mode as written in the config (``'0640'``)."""
    try:
        if not 0 <= int(value, 8) <= maximum:
            raise ValueError
    except ValueError:
        raise ValueError(f"{value!r} is not an octal mode such as '0640'") from None
    return value
