"""Compress a file in place, durably: ``name`` becomes ``name.gz`` (or ``.zst``).

The compressed copy is written under a hidden temporary name in the same folder (one left by
a run killed midway is replaced), with the source's mode, owner and times, fsynced, renamed
into place and the folder fsynced; only then is the source removed, and only if it did not
change meanwhile (a writer appending to it would otherwise lose what it wrote). Everything
goes through the folder's descriptor.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from wellkept.backups.compression import decompressing_reader
from wellkept.errors import TaskFailed
from wellkept.fs import temp_name

Method = Literal["gzip", "zstd"]
EXTENSIONS: dict[str, str] = {"gzip": ".gz", "zstd": ".zst"}
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Compressed:
    name: str
    bytes_in: int
    bytes_out: int


def writer(raw: BinaryIO, method: Method, level: int | None) -> Any:
    """A streaming compressor writing into ``raw`` (close it to finish the stream)."""
    if method == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6 if level is None
                             else level, mtime=0)
    import zstandard

    return zstandard.ZstdCompressor(level=3 if level is None else level,
                                    threads=-1).stream_writer(raw, closefd=False)


def holds_same(dir_fd: int, name: str, method: Method) -> bool:
    """Whether ``name`` + extension decompresses to exactly the bytes of ``name``: the
    compressed copy of a run killed after putting it in place but before removing its
    source. A copy that is damaged, shorter or different is not the same."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        with os.fdopen(os.open(name, flags, dir_fd=dir_fd), "rb") as src, \
                os.fdopen(os.open(name + EXTENSIONS[method], flags, dir_fd=dir_fd),
                          "rb") as packed:
            stream = decompressing_reader(packed, method)
            while True:
                chunk = src.read(CHUNK)
                if _read_exactly(stream, len(chunk) or 1) != chunk:
                    return False
                if not chunk:
                    return True
    except Exception:  # a damaged copy (EOF, CRC, a zstd frame) is not the same
        return False


def _read_exactly(stream: Any, size: int) -> bytes:
    """``size`` bytes, fewer only at the end (a decompressor may hand back less per read)."""
    parts, got = [], 0
    while got < size and (part := stream.read(size - got)):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def fsync_folder(dir_fd: int) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on folders
        os.fsync(dir_fd)


def compress_at(dir_fd: int, name: str, method: Method, level: int | None = None, *,
                expect: os.stat_result | None = None, keep_source: bool = False) -> Compressed:
    """Compress ``name`` (in the folder ``dir_fd``) to ``name`` + extension; return sizes.

    ``expect``: the ``lstat`` the caller decided on; a file that changed since is left
    alone (TaskFailed). The source is removed unless ``keep_source``."""
    final = name + EXTENSIONS[method]
    tmp = temp_name(final)
    try:
        src_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                         dir_fd=dir_fd)
    except OSError as exc:
        raise TaskFailed(f"cannot open {name!r}: {exc.strerror}") from None
    with os.fdopen(src_fd, "rb") as src:
        st = os.fstat(src.fileno())
        if expect is not None and (st.st_ino, st.st_size, st.st_mtime_ns) != (
                expect.st_ino, expect.st_size, expect.st_mtime_ns):
            raise TaskFailed(f"{name!r} changed since it was checked; left alone")
        with contextlib.suppress(FileNotFoundError):
            os.stat(final, dir_fd=dir_fd, follow_symlinks=False)
            raise TaskFailed(f"{final!r} already exists; {name!r} left uncompressed")
        with contextlib.suppress(FileNotFoundError):  # left by a run killed mid-compression
            os.unlink(tmp, dir_fd=dir_fd)
        out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         st.st_mode & 0o7777, dir_fd=dir_fd)
        try:
            with os.fdopen(out_fd, "wb") as out:
                stream = writer(out, method, level)
                while chunk := src.read(CHUNK):
                    stream.write(chunk)
                stream.close()
                out.flush()
                if os.geteuid() == 0:
                    with contextlib.suppress(OSError):
                        os.fchown(out.fileno(), st.st_uid, st.st_gid)
                os.fchmod(out.fileno(), st.st_mode & 0o7777)
                os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
                os.fsync(out.fileno())
                size_out = os.fstat(out.fileno()).st_size
            after = os.fstat(src.fileno())
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise TaskFailed(f"{name!r} was written to while it was compressed; "
                                 "left alone")
            os.rename(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    fsync_folder(dir_fd)
    if not keep_source:
        os.unlink(name, dir_fd=dir_fd)
        fsync_folder(dir_fd)
    return Compressed(final, st.st_size, size_out)
