"""Scanning log files for leaked secrets, line by line (plain, .gz or .zst)."""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wellkept.audit.patterns import SecretPattern, excerpt
from wellkept.connector import Finding

#: a line longer than this is looked at in its first part only (minified dumps, binary noise)
MAX_LINE = 64 * 1024


@dataclass
class ScanStats:
    files: int = 0
    lines: int = 0
    bytes: int = 0
    truncated: list[str] = field(default_factory=list)


def _open(path: Path) -> IO[bytes]:
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if path.name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.name.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


def scan_file(path: Path, patterns: list[SecretPattern], prefilter: re.Pattern[str],
              stats: ScanStats, max_bytes: int, per_file: int) -> Iterator[Finding]:
    """Findings in one file (a symlink or a non-regular file is not opened)."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        return
    stats.files += 1
    found = read = 0
    seen: set[tuple[str, str]] = set()
    with _open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            stats.lines += 1
            stats.bytes += len(raw)
            read += len(raw)
            if read > max_bytes:
                stats.truncated.append(str(path))
                return
            line = raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\n")
            if not prefilter.search(line):
                continue
            matches = [(pattern, match) for pattern in patterns
                       for match in pattern.regex.finditer(line)]
            every = tuple(m for _p, m in matches)  # masked in each excerpt of this line
            for pattern, match in matches:
                key = (pattern.name, match.group(0))
                if key in seen:  # the same secret again: once per file is enough
                    continue
                seen.add(key)
                found += 1
                yield Finding(check="log_secret", severity=pattern.severity,
                              object=str(path),
                              message=f"{pattern.description} in {path.name} line {number}",
                              evidence={"pattern": pattern.name, "line": number,
                                        "excerpt": excerpt(line, match, others=every)})
                if found >= per_file:
                    return


def combined(patterns: list[SecretPattern]) -> re.Pattern[str]:
    """One expression matching wherever any pattern could: most lines fail it at once."""
    return re.compile("|".join(f"(?:{_ungrouped(p.regex.pattern)})" for p in patterns))


def _ungrouped(regex: str) -> str:
    # a group inside an alternation is harmless, but inline flags must stay first: drop them
    # and match case-insensitively where a pattern asked for it by widening to (?i:…)
    if regex.startswith("(?i)"):
        return f"(?i:{regex[4:]})"
    return regex


def files_of(globs: list[Path]) -> Iterator[Path]:
    """Files named by paths whose last component may be a glob, in name order."""
    from wellkept.fs.globs import matches

    for path in globs:
        if any(c in path.name for c in "*?["):
            try:
                names = sorted(os.listdir(path.parent))
            except OSError:
                continue
            yield from (path.parent / n for n in names if matches(path.name, n, n))
        elif path.is_dir():
            for root, dirs, names in os.walk(path):  # os.walk never follows symlinks
                dirs.sort()
                yield from (Path(root) / n for n in sorted(names))
        elif os.path.lexists(path):
            yield path
