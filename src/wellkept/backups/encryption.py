"""age encryption of backup streams (pyrage), without a key ever on a command line.

The recipient (``encrypt_to``, an ``age1…`` public key) is not secret. The identity that
decrypts comes from a file (``age_identity_file``) or from the environment variable
``WELLKEPT_AGE_IDENTITY`` (the ``AGE-SECRET-KEY-1…`` line itself), and never reaches a log,
the history or argv. pyrage encrypts from a reader into a writer, so each direction runs in a
thread fed through an OS pipe, and the stream stays in constant memory.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

from wellkept.errors import MissingDependency, TaskFailed

IDENTITY_ENV = "WELLKEPT_AGE_IDENTITY"
SUFFIX = ".age"


def _pyrage() -> Any:
    try:
        import pyrage
    except ModuleNotFoundError:
        raise MissingDependency("pyrage", "age", "Backup encryption") from None
    return pyrage


def recipient(text: str) -> Any:
    """An age recipient from its ``age1…`` text."""
    try:
        return _pyrage().x25519.Recipient.from_str(text.strip())
    except Exception:  # pyrage raises its own error types; none of them carries a secret
        raise TaskFailed("encrypt_to is not an age recipient (it should start with age1)"
                         ) from None


def load_identities(identity_file: Path | None) -> list[Any]:
    """The identities to decrypt with: from the file, else from WELLKEPT_AGE_IDENTITY."""
    if identity_file is not None:
        try:
            text = identity_file.read_text()
        except OSError as exc:
            raise TaskFailed(f"cannot read the age identity file {identity_file}: "
                             f"{exc.strerror}") from None
    else:
        text = os.environ.get(IDENTITY_ENV, "")
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise TaskFailed("the backup is encrypted: give age_identity_file, or set "
                         f"{IDENTITY_ENV} to the AGE-SECRET-KEY-1… line")
    out = []
    for line in lines:
        try:
            out.append(_pyrage().x25519.Identity.from_str(line))
        except Exception:
            raise TaskFailed("the age identity is not valid (expected AGE-SECRET-KEY-1…)"
                             ) from None
    return out


class _PipeThread:
    """Runs ``work(reader_of_pipe)`` or ``work(writer_to_pipe)`` in a thread; keeps its error."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self, work: Any, *args: Any) -> None:
        def run() -> None:
            try:
                work(*args)
            except BaseException as exc:  # re-raised in the caller's thread
                self.error = exc

        self.thread = threading.Thread(target=run, name="wellkept-age", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise TaskFailed(f"age: {self.error}") from None


class EncryptingWriter:
    """Writes encrypt into ``out`` (for ``recipients``); ``close`` finishes the age stream
    and leaves ``out`` open."""

    def __init__(self, out: BinaryIO, recipients: list[Any]) -> None:
        read_fd, write_fd = os.pipe()
        self._pipe_in = os.fdopen(write_fd, "wb", buffering=1 << 20)
        self._reader = os.fdopen(read_fd, "rb", buffering=1 << 20)
        self._worker = _PipeThread()
        self._worker.start(_pyrage().encrypt_io, self._reader, out, recipients)

    def write(self, data: bytes) -> int:
        try:
            return self._pipe_in.write(data)
        except BrokenPipeError:
            self._worker.join()  # the encryptor died: report its error
            raise

    def flush(self) -> None:
        self._pipe_in.flush()

    def close(self) -> None:
        self._pipe_in.close()
        try:
            self._worker.join()
        finally:
            self._reader.close()


def decrypting_reader(source: BinaryIO, identities: list[Any]) -> BinaryIO:
    """A reader of the plaintext of the age stream ``source``."""
    read_fd, write_fd = os.pipe()
    pipe_out = os.fdopen(write_fd, "wb", buffering=1 << 20)
    worker = _PipeThread()

    def work() -> None:
        try:
            _pyrage().decrypt_io(source, pipe_out, identities)
        finally:
            pipe_out.close()

    worker.start(work)
    reader: Any = _DecryptedReader(os.fdopen(read_fd, "rb", buffering=1 << 20), worker)
    return reader  # type: ignore[no-any-return]


class _DecryptedReader:
    def __init__(self, pipe: BinaryIO, worker: _PipeThread) -> None:
        self._pipe = pipe
        self._worker = worker

    def read(self, size: int = -1) -> bytes:
        data = self._pipe.read(size)
        if not data:
            self._worker.join()  # at the end: a wrong key or a damaged file shows here
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._pipe.close()
