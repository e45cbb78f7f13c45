"""Folders of files on this machine: configs, uploads, data folders (``files:///``).

``files:///relative/dir`` (relative to the config file) or ``files:////abs/dir``; repeat
``?exclude=GLOB`` to leave paths out (globs match the path relative to the folder, and a
matching folder is skipped whole). A backup is a tar of the tree. It never follows a symlink
(links are stored as links) and never crosses into another filesystem mounted below the folder,
as ``tar --one-file-system`` does. Sockets, FIFOs and devices are skipped. A file that changes
while it is read is stored as it was read, padded if it shrank, as GNU tar does, and named in
the backup's details.
"""

from __future__ import annotations

import fnmatch
import os
import platform
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import parse_qs

from wellkept.connector import Connector, DumpInfo, DumpOptions, Ping, StatsReport
from wellkept.connectors import _fileurl
from wellkept.errors import ConfigError, ConnectionFailed, TaskFailed

FORMAT = "files_tar"
SUFFIX = ".tar"
CHUNK = 1024 * 1024


class FilesConnector(Connector):
    """A folder tree on this machine (``files:///dir``, ``?exclude=GLOB`` repeatable)."""

    name = "files"
    summary = "folders of files on this machine (configs, uploads, data), backed up as a tar"

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        return _fileurl.resolve(url, base_dir)

    @property
    def root(self) -> Path:
        return _fileurl.path_of(self.settings.url)

    @property
    def excludes(self) -> list[str]:
        query = self.settings.url.partition("?")[2]
        parsed = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(parsed) - {"exclude"})
        if unknown:
            raise ConfigError(f"files URL: unknown option {unknown[0]!r}; the only option "
                              "is exclude=GLOB (repeatable)")
        return parsed.get("exclude", [])

    def identity(self) -> str:
        return f"files:{os.path.realpath(self.root)}"

    def file_root(self) -> Path:
        """File kinds on a folder target take paths relative to it, and stay inside it."""
        return self.root

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        try:
            with os.scandir(self.root) as entries:
                top = sum(1 for _ in entries)
        except FileNotFoundError:
            raise ConnectionFailed(f"no folder at {self.root}") from None
        except NotADirectoryError:
            raise ConnectionFailed(f"{self.root} is not a folder") from None
        except PermissionError:
            raise ConnectionFailed(f"{self.root} cannot be read (permission denied)") from None
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version="",
                    details={"path": str(self.root), "entries": top})

    # --- walking ---------------------------------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Every entry below the root (relative POSIX name, path, lstat), parents first, in a
        stable order; excluded names, other filesystems and special files are left out."""
        self.ping()
        device = self.root.stat().st_dev
        excludes = self.excludes
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                names = sorted(os.listdir(folder))
            except OSError as exc:
                raise TaskFailed(f"cannot list {folder}: {exc.strerror}") from None
            subfolders = []
            for name in names:
                path = folder / name
                rel = path.relative_to(self.root).as_posix()
                if any(fnmatch.fnmatchcase(rel, g) or fnmatch.fnmatchcase(name, g)
                       for g in excludes):
                    continue
                try:
                    st = path.lstat()
                except FileNotFoundError:  # removed since the listing
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != device:
                        continue  # another filesystem mounted here
                    subfolders.append(path)
                elif not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    continue  # sockets, FIFOs, devices
                yield rel, path, st
            stack.extend(reversed(subfolders))

    def content_counts(self) -> dict[str, int]:
        """Files, folders, symlinks and the bytes of the files (what a restore must match)."""
        counts = {"files": 0, "directories": 0, "symlinks": 0, "bytes": 0}
        if not self.root.exists():
            return counts
        for _rel, _path, st in self._walk():
            if stat.S_ISDIR(st.st_mode):
                counts["directories"] += 1
            elif stat.S_ISLNK(st.st_mode):
                counts["symlinks"] += 1
            else:
                counts["files"] += 1
                counts["bytes"] += st.st_size
        return counts

    def describe_counts(self, counts: dict[str, int]) -> str:
        return ", ".join(f"{n:,} {what}" for what, n in counts.items())

    def collect_stats(self, params: Any) -> StatsReport:
        counts = self.content_counts()
        largest = sorted(((st.st_size, rel) for rel, _p, st in self._walk()
                          if stat.S_ISREG(st.st_mode)), reverse=True)[:params.top]
        return StatsReport(metrics={"files": counts["files"], "bytes": counts["bytes"]},
                           details={"path": str(self.root), **counts,
                                    "largest": [{"path": r, "bytes": b} for b, r in largest]},
                           summary=f"{counts['files']} files, {counts['bytes']} bytes")

    # --- backup (Dumpable) ------------------------------------------------------------------------

    def dump_estimate(self) -> int:
        return self.content_counts()["bytes"]

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        """Stream the tree as a tar (POSIX format, numeric owners kept)."""
        changed: list[str] = []
        counts = {"files": 0, "directories": 0, "symlinks": 0, "bytes": 0}
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for rel, path, st in self._walk():
                info = tarfile.TarInfo(rel)
                info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
                info.mtime = int(st.st_mtime)
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                    counts["directories"] += 1
                elif stat.S_ISLNK(st.st_mode):
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                    tar.addfile(info)
                    counts["symlinks"] += 1
                elif self._add_file(tar, info, path, st.st_size):
                    counts["files"] += 1
                    counts["bytes"] += st.st_size
                    if path.stat().st_mtime_ns != st.st_mtime_ns:
                        changed.append(rel)
        details: dict[str, Any] = {"path": str(self.root), "excludes": self.excludes}
        if changed:
            details["changed_while_reading"] = changed[:100]
        return DumpInfo(format=FORMAT, suffix=SUFFIX, database=str(self.root),
                        server_version="", tools={"python-tarfile": platform.python_version()},
                        counts=counts, details=details)

    @staticmethod
    def _add_file(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path, size: int) -> bool:
        """Add ``size`` bytes of the file: a file that grew is cut at its listed size and one
        that shrank is padded with zeros, so the archive stays well formed. False when the
        file vanished before it could be opened."""
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return False
        with fh:
            info.size = size
            tar.addfile(info, _Exactly(fh, size))
        return True

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        """Read the whole archive (every member to its end) and check every name is safe."""
        names = []
        try:
            for member, data in _members(source, fmt):
                names.append(member.name)
                if data is not None:
                    while data.read(CHUNK):
                        pass
        except (tarfile.TarError, EOFError) as exc:
            raise TaskFailed(f"the archive is truncated or not a tar archive: {exc}") from None
        return names

    @contextmanager
    def scratch(self) -> Iterator[str]:
        folder = Path(tempfile.mkdtemp(prefix="wellkept-files-"))
        try:
            (folder / "restore").mkdir(mode=0o700)
            yield f"files:///{folder / 'restore'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        """Extract into the folder (created if missing). With ``replace`` (``restore --yes``)
        the folder's current content is deleted first, so that it ends up exactly as backed
        up. Tar's own filter refuses anything that would land outside the folder."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if options.replace:
            for child in self.root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        try:
            with tarfile.open(fileobj=source, mode="r|") as tar:
                for member in tar:
                    _check_name(member)
                    tar.extract(member, self.root, filter="tar")
        except tarfile.FilterError as exc:
            raise TaskFailed(f"the archive holds an entry that would land outside "
                             f"{self.root}: {exc}") from None
        except (tarfile.TarError, EOFError) as exc:
            raise TaskFailed(f"the archive is truncated or not a tar archive: {exc}") from None

    def is_empty(self) -> bool:
        try:
            with os.scandir(self.root) as entries:
                return next(entries, None) is None
        except FileNotFoundError:
            return True

    def smoke(self, query: str) -> Any:
        """A smoke query is a path that must exist in the restored tree; answers its size."""
        path = Path(os.path.normpath(self.root / query))
        if not path.is_relative_to(self.root) or not os.path.lexists(path):
            raise TaskFailed(f"{query!r} is not in the restored files")
        return path.lstat().st_size


def _members(source: BinaryIO, fmt: str) -> Iterator[tuple[tarfile.TarInfo, Any]]:
    if fmt != FORMAT:
        raise TaskFailed(f"the files connector reads {FORMAT} dumps, not {fmt!r}")
    with tarfile.open(fileobj=source, mode="r|") as tar:
        for member in tar:
            _check_name(member)
            yield member, tar.extractfile(member) if member.isfile() else None


def _check_name(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()
                                                         or member.issym()):
        raise TaskFailed(f"the archive holds an unexpected entry {member.name!r}")


class _Exactly:
    """Reads exactly ``size`` bytes of a file: cut when it grew, zero-padded when it shrank."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh, self._left = fh, size

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        data = self._fh.read(want)
        if len(data) < want:
            data += b"\0" * (want - len(data))
        self._left -= len(data)
        return data


__all__ = ["FilesConnector"]
