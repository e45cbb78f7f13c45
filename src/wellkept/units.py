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


def human_age(seconds: float) -> str:
    """An approximate age in its largest unit and the next: ``1d 3h``, ``5h 12min``, ``42s``."""
    left = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            text = f"{left // size}{unit}"
            if i + 1 < len(units) and (rest := left % size // units[i + 1][1]):
                text += f" {rest}{units[i + 1][0]}"
            return text
    return "0s"
