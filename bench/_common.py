"""Helpers shared by the benchmarks: timing a command with its peak memory, the state of the
code under test, medians, commands recorded without local paths, and byte-compiling wellkept as
an installed copy is."""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Measured:
    """One finished command: wall time, exit code, output and peak resident set."""

    command: str
    seconds: float
    exit_code: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    peak_rss_mb_wait4: float
    peak_rss_mb_vmhwm: float


def vm_hwm_kb(pid: int) -> int:
    """The process's peak resident set so far (VmHWM), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` to the end; peak RSS from /proc VmHWM polling and from wait4()."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err,
                                env={**os.environ, **env} if env else None)
        hwm_kb = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm_kb = max(hwm_kb, vm_hwm_kb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    return Measured(command=shown(cmd), seconds=round(wall, 3),
                    exit_code=os.waitstatus_to_exitcode(status), stdout=stdout, stderr=stderr,
                    peak_rss_mb=round(max(usage.ru_maxrss, hwm_kb) / 1024, 1),
                    peak_rss_mb_wait4=round(usage.ru_maxrss / 1024, 1),
                    peak_rss_mb_vmhwm=round(hwm_kb / 1024, 1))


def shown(cmd: list[str]) -> str:
    """The command as recorded: programs by name, the config as CONFIG (no local paths)."""
    parts = [Path(cmd[0]).name, *cmd[1:]]
    return " ".join("CONFIG" if p.endswith((".yml", ".yaml")) else p for p in parts)


def source_state() -> dict[str, Any]:
    """The commit under test and the files in src/ that differ from it (read-only git)."""
    root = str(Path(__file__).resolve().parent.parent)
    git = ["git", "--no-optional-locks", "-C", root]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True,
                             text=True, check=False).stdout.splitlines()
    return {"commit": head or None, "src_changed": [line[3:] for line in changed]}


def wellkept_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def median_of(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def compile_wellkept() -> None:
    """Byte-compile the wellkept package under test, as ``pip install`` does. A source
    checkout run with PYTHONDONTWRITEBYTECODE set (as some CI and sandbox shells are) would
    otherwise compile every module it imports from source at each start, about 80 of them
    for ``wellkept run``: a cost no installed copy pays, which would be timed as wellkept's.
    compileall writes only what is missing or stale, whatever that variable says."""
    import wellkept

    package = Path(wellkept.__file__).resolve().parent
    compileall.compile_dir(str(package), quiet=1, workers=1)
