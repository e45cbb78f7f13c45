"""The artifact pipeline: dump bytes → compress → (encrypt) → checksum → file.

``ArtifactWriter`` is what a connector's ``dump`` writes into; it counts the raw bytes (for
progress and the manifest), and the stored bytes are hashed as they are written, so the
checksum costs no second read. ``open_artifact`` undoes the layers for reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, BinaryIO

from wellkept.backups import compression, encryption

CHUNK = 1 << 20


class _Hashing:
    """The bottom layer: hashes and counts what reaches the file."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


class ArtifactWriter:
    """A binary writer for the raw dump; ``finish`` closes the layers (not ``out``)."""

    def __init__(self, out: BinaryIO, method: str, recipients: list[Any] | None = None,
                 level: int | None = None,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self._hashing = _Hashing(out)
        self._encrypting = (encryption.EncryptingWriter(self._hashing, recipients)  # type: ignore[arg-type]
                            if recipients else None)
        below: Any = self._encrypting or self._hashing
        self._compressing = compression.compressing_writer(below, method, level)
        self.raw_bytes = 0
        self._on_progress = on_progress
        self._next_report = 0

    def write(self, data: bytes) -> int:  # the buffer protocol's bytes-likes are welcome too
        self._compressing.write(data)
        self.raw_bytes += len(data)
        if self._on_progress is not None and self.raw_bytes >= self._next_report:
            self._on_progress(self.raw_bytes)
            self._next_report = self.raw_bytes + 16 * CHUNK
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass  # compressors flush on finish; an early flush would only cost ratio

    def finish(self) -> tuple[str, int]:
        """End every layer; the stored bytes' sha256 and size."""
        self._compressing.close()
        if self._encrypting is not None:
            self._encrypting.close()
        self._hashing.flush()
        return self._hashing.sha256.hexdigest(), self._hashing.bytes


def open_artifact(source: BinaryIO, method: str, identities: list[Any] | None) -> BinaryIO:
    """The raw dump inside a stored artifact (decrypting first when ``identities`` are given).
    A layer that cannot undo its bytes (damaged, or not what the manifest says) raises
    TaskFailed, whatever its library's own exception."""
    plain = encryption.decrypting_reader(source, identities) if identities else source
    layers = method + (" + age" if identities else "")
    return _Guarded(compression.decompressing_reader(plain, method), layers)  # type: ignore[return-value]


class _Guarded:
    """Turns a decoder's own errors (ZstdError, zlib.error, a decryption failure) into one
    TaskFailed that says the artifact could not be read back."""

    def __init__(self, source: BinaryIO, layers: str) -> None:
        self._source, self._layers = source, layers

    def read(self, size: int = -1) -> bytes:
        from wellkept.errors import TaskFailed, WellkeptError

        try:
            return self._source.read(size)
        except WellkeptError:
            raise
        except Exception as exc:  # each library has its own; all mean "damaged"
            raise TaskFailed(f"the artifact cannot be read back ({self._layers}): "
                             f"{type(exc).__name__}: {exc}") from None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._source.close()


def copy_stream(source: BinaryIO, out: Any, limit: Callable[[], None] | None = None) -> int:
    """Copy until EOF in 1 MiB chunks; ``limit`` is called between chunks (cancellation)."""
    total = 0
    while chunk := source.read(CHUNK):
        out.write(chunk)
        total += len(chunk)
        if limit is not None:
            limit()
    return total


def sha256_of(source: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
