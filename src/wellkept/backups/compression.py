"""Compression of backup streams: zstd (multi-threaded, the default), gzip, or none.

zstd at a low level is several times faster than gzip at a similar ratio, and its worker
threads keep the dump tool, not the compressor, the slowest stage of the pipeline.
"""

from __future__ import annotations

import gzip
from typing import Any, BinaryIO

from wellkept.errors import MissingDependency

COMPRESSIONS = ("zstd", "gzip", "none")
SUFFIXES = {"zstd": ".zst", "gzip": ".gz", "none": ""}
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "none": 0}


def _zstd() -> Any:
    try:
        import zstandard
    except ModuleNotFoundError:  # a core dependency; only a broken install lacks it
        raise MissingDependency("zstandard", "", "zstd compression") from None
    return zstandard


def compressing_writer(out: BinaryIO, method: str, level: int | None = None) -> BinaryIO:
    """A writer that compresses into ``out``. Closing it ends the stream but leaves ``out``
    open."""
    level = DEFAULT_LEVELS[method] if level is None else level
    if method == "zstd":
        cctx = _zstd().ZstdCompressor(level=level, threads=-1)
        writer: Any = cctx.stream_writer(out, closefd=False)
        return writer  # type: ignore[no-any-return]
    if method == "gzip":
        return gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0)  # type: ignore[return-value]
    if method == "none":
        return _Uncompressed(out)  # type: ignore[return-value]
    raise ValueError(f"unknown compression {method!r}")


def decompressing_reader(source: BinaryIO, method: str) -> BinaryIO:
    """A reader of the decompressed bytes of ``source``."""
    if method == "zstd":
        reader: Any = _zstd().ZstdDecompressor().stream_reader(
            source, read_across_frames=True, closefd=False)
        return reader  # type: ignore[no-any-return]
    if method == "gzip":
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    if method == "none":
        return source
    raise ValueError(f"unknown compression {method!r}")


class _Uncompressed:
    """Passes writes through; ``close`` leaves the underlying file open, like the others."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.flush()
