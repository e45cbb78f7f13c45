"""Walk a folder tree the way tmpreaper and systemd-tmpfiles do: never follow a symlink,
never cross into another filesystem, and keep each folder open while its entries are used.

Every entry is handed out with the descriptor of the folder it is in (``dir_fd``) and its
name, so the caller acts on it with ``*at`` calls (``unlink(name, dir_fd=…)``): a folder
replaced by a symlink after the listing is never entered, because folders are opened with
``O_NOFOLLOW``. Entries are read with ``lstat``: a symlink is a symlink, whatever it points to.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wellkept.fs.globs import matches_any

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: folders nested deeper are not entered: each level holds a descriptor and a Python frame,
#: so a tree thousands deep (anyone can make one in /tmp) would end the whole walk with a
#: RecursionError or run out of descriptors
MAX_DEPTH = 200


@dataclass(frozen=True)
class Entry:
    """One file found: where it is (folder descriptor + name), its path for messages, its
    path relative to the rule's folder (for globs) and its ``lstat``."""

    dir_fd: int
    name: str
    path: Path
    rel: str
    st: os.stat_result

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)

    def unchanged(self) -> bool:
        """Still the same file, same size and same mtime as when it was listed."""
        try:
            now = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) == (
            self.st.st_ino, self.st.st_dev, self.st.st_size, self.st.st_mtime_ns)


@dataclass
class Skipped:
    """What a walk left alone and why (symlinks, other filesystems, unreadable folders)."""

    entries: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    cap: int = 50

    def add(self, path: Path | str, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.entries) < self.cap:
            self.entries.append({"path": str(path), "reason": reason})


def open_folder(path: Path) -> int:
    """Open a folder without following a symlink at its last component."""
    return os.open(path, _DIR_FLAGS)


#: says why a folder must not be entered (it is locked, as systemd-tmpfiles honours), or None
FolderCheck = Callable[[os.stat_result], str | None]


def walk(root: Path, include: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = (),
         *, recursive: bool = True, skipped: Skipped | None = None,
         folders: bool = False, check: FolderCheck | None = None) -> Iterator[Entry]:
    """Regular files below ``root`` matching ``include`` and no ``exclude`` (a matching folder
    is pruned whole). ``folders`` also yields folders, after their content (so a caller can
    remove the ones it emptied). Symlinks, sockets, FIFOs, devices and other filesystems are
    recorded in ``skipped`` and never entered, and so are folders ``check`` refuses and
    folders more than ``MAX_DEPTH`` deep."""
    skipped = skipped if skipped is not None else Skipped()
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(top.st_mode):
        skipped.add(root, "symlink (not followed)")
        return
    if not stat.S_ISDIR(top.st_mode):
        skipped.add(root, "not a folder")
        return
    if check is not None and (reason := check(top)):
        skipped.add(root, reason)
        return
    try:
        fd = open_folder(root)
    except OSError as exc:
        skipped.add(root, f"cannot open: {exc.strerror}")
        return
    try:
        yield from _walk(fd, root, "", top.st_dev, include, exclude, recursive, skipped,
                         folders, check, 1)
    finally:
        os.close(fd)


def _walk(fd: int, path: Path, rel: str, device: int, include: tuple[str, ...],
          exclude: tuple[str, ...], recursive: bool, skipped: Skipped,
          folders: bool, check: FolderCheck | None, depth: int) -> Iterator[Entry]:
    with os.scandir(fd) as it:
        names = sorted(e.name for e in it)
    for name in names:
        child_rel = f"{rel}/{name}" if rel else name
        child = path / name
        if exclude and matches_any(exclude, child_rel, name):
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:  # removed since the listing
            continue
        if stat.S_ISLNK(st.st_mode):
            if matches_any(include, child_rel, name):
                skipped.add(child, "symlink (not followed)")
            continue
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                continue
            if st.st_dev != device:
                skipped.add(child, "another filesystem")
                continue
            if check is not None and (reason := check(st)):
                skipped.add(child, reason)
                continue
            if depth >= MAX_DEPTH:
                skipped.add(child, f"more than {MAX_DEPTH} folders deep (not entered)")
                continue
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:  # swapped for a symlink since the lstat, or unreadable
                skipped.add(child, f"cannot open: {exc.strerror}")
                continue
            try:
                yield from _walk(sub, child, child_rel, device, include, exclude, recursive,
                                 skipped, folders, check, depth + 1)
                if folders:
                    yield Entry(fd, name, child, child_rel, st)
            finally:
                os.close(sub)
            continue
        if not stat.S_ISREG(st.st_mode):
            if matches_any(include, child_rel, name):
                skipped.add(child, "not a regular file")
            continue
        if st.st_dev != device:  # a file bind-mounted over this one
            skipped.add(child, "another filesystem")
            continue
        if matches_any(include, child_rel, name):
            yield Entry(fd, name, child, child_rel, st)
