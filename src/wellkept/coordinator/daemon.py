"""Detach a coordinator from its terminal, the way a Unix daemon does, and say whether it
started.

:meth:`Daemon.start` forks twice: the first child makes a new session (``setsid``), so the
daemon has no controlling terminal, and exits at once; its child, the daemon, can never
acquire a terminal again since it is not a session leader. The daemon works in ``/`` (so it
holds no mount busy), reads nothing, and writes its output to a log file (or nowhere).

The original process does not guess: it waits on a pipe until the daemon reports that it
started (its pidfile written, its coordinator registered) or why it could not, so a
mistake such as a pidfile held by a live coordinator reaches the person who ran the
command, with a non-zero exit code. Fork before any thread exists and before any connection
is opened: neither survives a fork.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class Daemon:
    """One detach: ``start()`` returns True in the daemon and False in the original process,
    which then finds the daemon's ``pid`` or its ``error``."""

    def __init__(self, logfile: Path | None = None) -> None:
        self.logfile = logfile
        self.pid: int | None = None
        self.error: str | None = None
        self._report: int | None = None

    def start(self) -> bool:
        if self.logfile is not None:  # fail here, where the person can still read it
            self.logfile.parent.mkdir(parents=True, exist_ok=True)
            self.logfile.open("a").close()
        sys.stdout.flush()  # or what is buffered would be written twice, once per process
        sys.stderr.flush()
        read, write = os.pipe()
        first = os.fork()
        if first:
            os.close(write)
            self._wait(read, first)
            return False
        os.close(read)
        os.setsid()
        if os.fork():
            os._exit(0)  # the session leader goes; its child is the daemon
        os.chdir("/")
        self._redirect()
        self._report = write
        return True

    def ready(self) -> None:
        """In the daemon: it runs (the original process exits 0)."""
        self._send(f"ok {os.getpid()}")

    def failed(self, message: str) -> None:
        """In the daemon: it could not start (the original process exits 1 with this)."""
        self._send(f"error {message}")

    def _send(self, text: str) -> None:
        if self._report is None:
            return
        os.write(self._report, text.encode("utf-8", "replace"))
        os.close(self._report)
        self._report = None

    def _wait(self, read: int, first: int) -> None:
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        os.waitpid(first, 0)
        text = b"".join(chunks).decode("utf-8", "replace")
        status, _, rest = text.partition(" ")
        if status == "ok":
            self.pid = int(rest)
        else:
            where = f" (see {self.logfile})" if self.logfile else ""
            self.error = rest if status == "error" else \
                f"the daemon exited before it started{where}"

    def _redirect(self) -> None:
        null = os.open(os.devnull, os.O_RDWR)
        out = (os.open(self.logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
               if self.logfile is not None else null)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in {null, out}:
            if fd > 2:
                os.close(fd)
