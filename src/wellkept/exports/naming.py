"""Export file names with date tokens, and the retention of the files a name template made.

Tokens: ``{date}`` (2026-12-01), ``{time}`` (180000), ``{datetime}`` (20261201T180000),
``{task}``, ``{target}``, and ``{now:FORMAT}`` with strftime codes (``{now:%Y%m}``), all in
the configured time zone.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_TOKEN = re.compile(r"\{(date|time|datetime|task|target|now:[^{}]+)\}")


def check_template(value: str) -> str:
    leftover = _TOKEN.sub("", value)
    if "{" in leftover or "}" in leftover:
        raise ValueError(f"{value!r}: unknown token; use {{date}}, {{time}}, {{datetime}}, "
                         "{task}, {target} or {now:%Y%m%d}")
    if any(c in os.path.dirname(_TOKEN.sub("x", value)) for c in "*?["):
        raise ValueError(f"{value!r}: no wildcards in folder names")
    return value


def render(template: str, now: datetime, task: str, target: str) -> str:
    def one(m: re.Match[str]) -> str:
        token = m.group(1)
        if token.startswith("now:"):
            return now.strftime(token[4:])
        return {"date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H%M%S"),
                "datetime": now.strftime("%Y%m%dT%H%M%S"), "task": task,
                "target": target}[token]

    return _TOKEN.sub(one, template)


def name_regex(template: str, task: str, target: str) -> re.Pattern[str]:
    """Names the template can make in its folder (time tokens match any digits)."""
    parts, pos = [], 0
    name = os.path.basename(template)
    for m in _TOKEN.finditer(name):
        parts.append(re.escape(name[pos:m.start()]))
        token = m.group(1)
        parts.append(re.escape(task) if token == "task" else re.escape(target)
                     if token == "target" else _strftime_regex(token[4:])
                     if token.startswith("now:") else r"[0-9T:\-_.]+?")
        pos = m.end()
    parts.append(re.escape(name[pos:]))
    return re.compile("".join(parts))


#: what each strftime code can write (the C locale's names); other codes match anything
_CODES = {"Y": r"\d{4}", "G": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}",
          "e": r"[ \d]\d", "H": r"\d{2}", "I": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}",
          "j": r"\d{3}", "U": r"\d{2}", "W": r"\d{2}", "V": r"\d{2}", "u": r"\d",
          "w": r"\d", "f": r"\d{6}", "s": r"\d+", "z": r"[+-]\d{4}", "%": "%",
          "b": "[A-Za-z]+", "B": "[A-Za-z]+", "a": "[A-Za-z]+", "A": "[A-Za-z]+",
          "p": "[A-Za-z]+"}


def _strftime_regex(fmt: str) -> str:
    """A regular expression for what ``strftime(fmt)`` can write (``{now:%d%b%Y}``)."""
    out = []
    for piece in re.findall(r"%.|[^%]+|%", fmt):
        out.append(_CODES.get(piece[1], ".+?") if len(piece) == 2 and piece[0] == "%"
                   else re.escape(piece))
    return "".join(out)


@dataclass(frozen=True)
class OldFile:
    path: Path
    bytes: int
    mtime: float
    reason: str


def expired(folder: Path, regex: re.Pattern[str], keep: Path, *, keep_last: int | None,
            keep_seconds: float | None, now: float) -> list[OldFile]:
    """Earlier exports past the retention: beyond the ``keep_last`` newest (the new one
    counts) or older than ``keep_seconds``. Only regular files the template could have made;
    never symlinks, never the file just written."""
    found = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        if not regex.fullmatch(name) or folder / name == keep:
            continue
        st = os.lstat(folder / name)
        if stat.S_ISREG(st.st_mode):
            found.append((st.st_mtime, name, st.st_size))
    found.sort(reverse=True)
    out = []
    for rank, (mtime, name, size) in enumerate(found, start=2):
        if keep_last is not None and rank > keep_last:
            out.append(OldFile(folder / name, size, mtime, f"beyond keep_last {keep_last}"))
        elif keep_seconds is not None and now - mtime > keep_seconds:
            out.append(OldFile(folder / name, size, mtime, "older than keep_days"))
    return out
