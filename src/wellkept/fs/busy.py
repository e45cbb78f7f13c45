"""Files other processes are writing or have locked, as ``fuser``/``lsof`` and ``/proc/locks``
tell them (Linux).

A cleanup must not delete or compress a file a process still writes to (it would lose what is
written next), nor one held under a lock (the holder expects it to stay). The scan reads
``/proc/*/fd`` once per run, keeping only descriptors under the folders of interest, and their
``fdinfo`` flags; ``/proc/locks`` lists every ``flock``, POSIX and OFD lock by device and
inode. Processes we may not inspect are invisible: on a shared machine run as the files' owner
or root. Elsewhere than Linux nothing is known and nothing is skipped for this reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_ACCMODE = 0o3


class BusyFiles:
    """Which (device, inode) pairs are open for writing or locked, seen once at creation."""

    def __init__(self, roots: Iterable[Path], *, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        prefixes = tuple(str(os.path.realpath(r)).rstrip("/") + "/" for r in roots)
        self.writers: dict[tuple[int, int], int] = {}
        self.locks: dict[tuple[int, int], str] = {}
        if prefixes:
            self._scan_writers(prefixes)
        self._scan_locks()

    def _scan_writers(self, prefixes: tuple[str, ...]) -> None:
        me = str(os.getpid())
        try:
            pids = [p for p in os.listdir(self._proc) if p.isdigit() and p != me]
        except OSError:
            return
        for pid in pids:
            fd_dir = self._proc / pid / "fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:  # gone, or not ours to inspect
                continue
            for fd in fds:
                try:
                    target = os.readlink(fd_dir / fd)
                    if not target.startswith(prefixes):
                        continue
                    flags = _flags(self._proc / pid / "fdinfo" / fd)
                    if flags is None or flags & _ACCMODE == os.O_RDONLY:
                        continue
                    st = os.stat(fd_dir / fd)  # the open file itself, even if renamed
                except OSError:
                    continue
                self.writers[(st.st_dev, st.st_ino)] = int(pid)

    def _scan_locks(self) -> None:
        try:
            lines = (self._proc / "locks").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            parts = line.split()
            if "->" in parts:  # a waiter queued behind a lock listed on its own line
                continue
            try:
                kind, mode, pid, dev = parts[1], parts[3], parts[4], parts[5]
                major, minor, inode = dev.split(":")
                key = (os.makedev(int(major, 16), int(minor, 16)), int(inode))
            except (IndexError, ValueError):
                continue
            self.locks[key] = f"{kind} {mode} lock held by pid {pid}"

    def why(self, st: os.stat_result) -> str | None:
        """Why this file must be left alone now, or None."""
        key = (st.st_dev, st.st_ino)
        if key in self.writers:
            return f"open for writing by pid {self.writers[key]}"
        if key in self.locks:
            return self.locks[key]
        return None


def _flags(fdinfo: Path) -> int | None:
    try:
        for line in fdinfo.read_text().splitlines():
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        return None
    return None
