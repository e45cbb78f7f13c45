"""Where backups live: a local folder or S3-compatible object storage.

Both keep one rule: an object appears under its final name only when it is whole (a local
file is written under a hidden ``.partial`` name, flushed, then renamed; an S3 object exists
only once its upload completes). Names are ``<target>/<backup id><suffix>``, and a backup is
complete when its manifest exists, which is always written last.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from wellkept.errors import TaskFailed
from wellkept.fs.sync import sync_folder


class Storage(Protocol):
    #: where it is, for messages (never with credentials)
    url: str
    #: what ``open_storage`` reopens it from (kept in the catalog; never with credentials)
    location: str

    def writer(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def write_text(self, name: str, text: str) -> None: ...

    def reader(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def read_text(self, name: str) -> str: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def size(self, name: str) -> int: ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def sweep(self, prefix: str, idle_seconds: float) -> builtins.list[str]: ...


def open_storage(destination: str, base_dir: Path) -> Storage:
    """``s3://bucket/prefix`` or a folder (relative to the config file's folder)."""
    if destination.startswith("s3://"):
        from wellkept.backups.s3 import S3Storage

        return S3Storage(destination)
    path = Path(destination).expanduser()
    return LocalStorage(path if path.is_absolute() else base_dir / path)


def _failed(action: str, where: Path, exc: OSError) -> TaskFailed:
    return TaskFailed(f"cannot {action} {where}: {exc.strerror or exc}")


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and every missing folder above it, each mode 0700 (``mkdir -p``
    gives only the last one the mode)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another backup made it meanwhile
            each.mkdir(mode=0o700)


class LocalStorage:
    """A folder; files mode 0600 in folders mode 0700."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = self.location = str(root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise TaskFailed(f"backup name {name!r} leaves the destination folder")
        return path

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        final = self._path(name)
        partial = final.with_name(f".{final.name}.partial")
        try:
            _make_folders(final.parent)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise _failed("write to", final.parent, exc) from None
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
            sync_folder(final.parent)
        except OSError as exc:
            _discard(partial)
            raise _failed("write", final, exc) from None
        except BaseException:
            _discard(partial)
            raise

    def write_text(self, name: str, text: str) -> None:
        with self.writer(name) as fh:
            fh.write(text.encode())

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[BinaryIO]:
        path = self._path(name)
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise _failed("read", path, exc) from None
        with fh:
            yield fh

    def read_text(self, name: str) -> str:
        with self.reader(name) as fh:
            return fh.read().decode()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root.resolve()
        if not base.is_dir():
            return []
        root = self.root.resolve()
        return sorted(str(p.relative_to(root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise _failed("delete", self._path(name), exc) from None

    def sweep(self, prefix: str, idle_seconds: float) -> builtins.list[str]:
        """Delete the hidden ``.partial`` files under ``prefix`` that nothing has written to
        for ``idle_seconds``: what a backup killed mid-write (kill -9) left behind. A live
        backup writes its partial file continuously, so an idle one is an orphan."""
        folder = self._path(prefix) if prefix else self.root.resolve()
        if not folder.is_dir():
            return []
        swept, now = [], time.time()
        for path in folder.glob(".*.partial"):
            with contextlib.suppress(OSError):
                if path.is_file() and now - path.stat().st_mtime > idle_seconds:
                    path.unlink()
                    swept.append(path.name)
        return sorted(swept)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


