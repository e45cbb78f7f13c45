"""Real Celery workers for the tests: `wellkept worker` (or `celery -A …`) subprocesses, each in
a process group of its own, so a test can kill -9 one child, or the whole worker, and never
leaves one behind (a stray worker would take another test's messages)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import psutil

from tests.helpers import wait_for, wellkept_bin

#: every worker a test started, killed at its end whatever happened (see conftest)
STARTED: list[Worker] = []


class Worker:
    def __init__(self, config: Path, name: str, *, concurrency: int = 1,
                 queues: str | None = None, command: list[str] | None = None) -> None:
        self.config, self.name = config, name
        self.log = config.parent / f"worker-{name}.log"
        env = {k: v for k, v in os.environ.items() if k != "WELLKEPT_CONFIG"}
        if command is None:
            command = [wellkept_bin(), "-c", str(config), "worker", "--concurrency",
                       str(concurrency), "--hostname", f"{name}@%h",
                       *(["--queues", queues] if queues else [])]
        else:
            env["WELLKEPT_CONFIG"] = str(config)
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(command, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env, cwd=config.parent, start_new_session=True)
        STARTED.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, seconds: float = 60) -> Worker:
        assert wait_for(lambda: " ready." in self.text() or self.proc.poll() is not None,
                        seconds), self.text()
        assert self.proc.poll() is None, self.text()
        return self

    def children(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def owns(self, pid: int) -> bool:
        return pid in self.children()

    def kill(self) -> None:
        """kill -9 of the whole worker: its main process and every child."""
        if self.proc.poll() is None or self._group_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._out.close()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (a warm shutdown), then kill -9 if it is still there after ``timeout``."""
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        code = self.proc.poll()
        self.kill()
        return code

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


def kill_all() -> None:
    while STARTED:
        worker = STARTED.pop()
        with contextlib.suppress(Exception):  # already gone
            worker.kill()
