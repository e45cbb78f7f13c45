"""Dates in file names: ``prices-{date}.parquet`` with ``date_format: "%Y%m%d"``."""

from __future__ import annotations

import re
from datetime import date, datetime

_CODES = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "y": r"\d{2}", "j": r"\d{3}",
          "b": r"[A-Za-z]{3}", "B": r"[A-Za-z]+"}


def check_pattern(pattern: str, token: str) -> str:
    if pattern.count("{" + token + "}") != 1:
        raise ValueError(f"{pattern!r} must hold the token {{{token}}} exactly once")
    if "/" in pattern or pattern.startswith("."):
        raise ValueError(f"{pattern!r}: a file name, without folders")
    return pattern


def check_format(fmt: str) -> str:
    codes = re.findall(r"%(.)", fmt)
    unknown = [c for c in codes if c not in _CODES]
    has_year = "Y" in codes or "y" in codes
    if unknown or not has_year or "m" not in codes:
        raise ValueError(f"{fmt!r}: use %Y (or %y), %m and %d (also %j, %b, %B)")
    return fmt


def name_regex(pattern: str, date_format: str) -> re.Pattern[str]:
    """The regular expression for names made from ``pattern`` (a glob around ``{date}``)."""
    date_re = "".join(_CODES[c[1]] if c.startswith("%") else re.escape(c)
                      for c in re.findall(r"%.|[^%]+", date_format))
    before, after = pattern.split("{date}")

    def glob(part: str) -> str:
        return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
                       for ch in part)

    return re.compile(f"{glob(before)}(?P<date>{date_re}){glob(after)}", re.DOTALL)


def date_of(name: str, regex: re.Pattern[str], date_format: str) -> date | None:
    m = regex.fullmatch(name)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group("date"), date_format).date()
    except ValueError:  # 2026-02-30: looks like a date, is not one
        return None


def month_name(output: str, month: date, month_format: str) -> str:
    return output.replace("{month}", month.strftime(month_format))
