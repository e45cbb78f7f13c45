"""Running an engine's own dump and restore tools (pg_dump, mariadb-dump, …) safely.

Secrets go through the environment or an option file, never argv (other users can read a
process's command line). stderr goes to a temporary file, so a chatty tool can never block on
a full pipe, and its tail becomes the error message. Running children are tracked so that a
timeout (``Connector.interrupt``) can stop them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from wellkept.errors import TaskFailed
from wellkept.redact import redact

CHUNK = 1 << 20


class Children:
    """The tool processes a connector has running; ``kill`` stops them all."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.killed = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill(self) -> None:
        with self._lock:
            procs = list(self._procs)
            self.killed = bool(procs) or self.killed
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def tool(*names: str) -> str:
    """The first of ``names`` on PATH, or a TaskFailed naming the package to install."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise TaskFailed(f"{names[0]} is not installed (looked for {', '.join(names)} on PATH)")


def version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def run(args: list[str], *, env: dict[str, str] | None = None, children: Children,
        stdout: Any = None, stdin: BinaryIO | None = None, what: str,
        on_start: Callable[[subprocess.Popen[bytes]], None] | None = None) -> bytes:
    """Run a tool to completion. ``stdout`` (a writer) receives its output as it comes,
    ``stdin`` (a reader) is fed to it; without ``stdout`` the output is returned. A non-zero
    exit raises TaskFailed with the tail of stderr (secrets redacted)."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env=full_env, stdout=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stderr=err)
        children.add(proc)
        feeder = None
        captured = bytearray()
        try:
            if on_start is not None:
                on_start(proc)
            if stdin is not None:
                feeder = _Feeder(stdin, proc)
            assert proc.stdout is not None
            while chunk := proc.stdout.read(CHUNK):
                if stdout is not None:
                    stdout.write(chunk)
                else:
                    captured += chunk
            code = proc.wait()
            if feeder is not None:
                feeder.join()
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            children.discard(proc)
        if feeder is not None and feeder.error is not None:
            raise feeder.error  # the input broke first (damaged or truncated backup)
        if code != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace").strip()
            if children.killed and code < 0:
                raise TaskFailed(f"{what} was stopped")
            raise TaskFailed(f"{what} failed (exit {code}): {redact(tail)}")
        return bytes(captured)


class _Feeder:
    """Writes ``source`` into the child's stdin from a thread (so stdout keeps draining)."""

    def __init__(self, source: BinaryIO, proc: subprocess.Popen[bytes]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(source, proc), daemon=True,
                                        name="wellkept-feed")
        self._thread.start()

    def _run(self, source: BinaryIO, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        try:
            while chunk := source.read(CHUNK):
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # the tool stopped reading: its exit code tells why
        except BaseException as exc:  # a damaged or undecryptable backup
            self.error = exc
            proc.kill()
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()

    def join(self) -> None:
        self._thread.join()
