"""Glob patterns for rules: ``*.log``, ``logs/**/*.gz``, ``tmp/?/*``.

A pattern without a slash matches a file's name wherever it is (as in .gitignore); one with a
slash matches the path relative to the rule's folder. ``*`` and ``?`` never match a slash,
``**`` matches any number of folders, ``[abc]`` a class. Names may hold spaces and newlines:
the patterns match them like any other character.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def matches(pattern: str, rel: str, name: str) -> bool:
    """Whether ``pattern`` matches the entry ``rel`` (relative POSIX path) named ``name``."""
    target = rel if "/" in pattern.rstrip("/") else name
    return _compile(pattern.rstrip("/")).fullmatch(target) is not None


def matches_any(patterns: tuple[str, ...] | list[str], rel: str, name: str) -> bool:
    return any(matches(p, rel, name) for p in patterns)


def check_pattern(pattern: str) -> str:
    """Refuse patterns that can only be mistakes (empty, absolute, climbing with ``..``)."""
    if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        raise ValueError(f"glob {pattern!r}: patterns are relative to the rule's path and "
                         "never climb out of it with '..'")
    return pattern
