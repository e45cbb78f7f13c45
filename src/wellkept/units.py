"""Human-readable figures for messages and tables."""

from __future__ import annotations


def human_bytes(value: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``plural(2, "batch", "batches")`` -> ``2 batches``."""
    shown = f"{int(count)}" if float(count).is_integer() else f"{count:g}"  # never 1e+06
    if count == 1:
        return f"{shown} {noun}"
    return f"{shown} " + (many or (noun + "es" if noun.endswith(("s", "ch", "sh", "x"))
                                       else noun + "s"))
