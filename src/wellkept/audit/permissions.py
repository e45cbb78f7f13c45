"""Who may read wellkept's sensitive files: backups, configs, state, key files.

A file is a finding when its group may read it (warning) or anyone may read or write it
(critical); a folder when anyone may write into it (critical), since then its files can be
swapped. Symlinks are reported, not followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from wellkept.connector import Finding

#: files looked at below one folder at most (a backup folder can hold many)
MAX_ENTRIES = 20_000


def check(path: Path, role: str) -> Iterator[Finding]:
    """Findings for ``path`` (a file, or a folder and the files below it)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        yield Finding("permissions", "info", str(path), f"{role} {path} is a symlink; "
                      "its target was not checked", {"role": role})
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _folder(path, st, role)
        seen = 0
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(dirs):
                sub = Path(root) / name
                sub_st = os.lstat(sub)
                yield from _folder(sub, sub_st, role)
            for name in sorted(names):
                seen += 1
                if seen > MAX_ENTRIES:
                    return
                file = Path(root) / name
                file_st = os.lstat(file)
                if stat.S_ISREG(file_st.st_mode):
                    yield from _file(file, file_st, role)
        return
    if stat.S_ISREG(st.st_mode):
        yield from _file(path, st, role)


def _file(path: Path, st: os.stat_result, role: str) -> Iterator[Finding]:
    mode = stat.S_IMODE(st.st_mode)
    evidence = {"role": role, "mode": f"{mode:04o}", "uid": st.st_uid, "gid": st.st_gid}
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        what = "readable" if mode & stat.S_IROTH else "writable"
        yield Finding("permissions", "critical", str(path),
                      f"{role} {path} is world-{what} (mode {mode:04o}); chmod 600 it",
                      evidence)
    elif mode & (stat.S_IRGRP | stat.S_IWGRP):
        yield Finding("permissions", "warning", str(path),
                      f"{role} {path} is group-readable (mode {mode:04o}); chmod 600 it",
                      evidence)


def _folder(path: Path, st: os.stat_result, role: str) -> Iterator[Finding]:
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        yield Finding("permissions", "critical", str(path),
                      f"the {role} folder {path} is world-writable (mode {mode:04o}): anyone "
                      "can replace its files", {"role": role, "mode": f"{mode:04o}"})
