"""Whether the process behind a run (or a coordinator) still exists, when we can tell.

A lease expires after its full length; a process that no longer exists is dead now. Knowing it
at once lets a coordinator restarted after ``kill -9`` recover its own runs without waiting out
their leases. A process id only means something within one kernel boot and one PID namespace
(containers have their own, and may share a host name), so each process records its
``host_id`` (the boot id and the PID namespace) beside its pid, and the pid is only looked up
for a matching ``host_id``. A pid reused by a newer process is told apart by its start time.
"""

from __future__ import annotations

import functools
import os
import socket
from datetime import datetime
from pathlib import Path


@functools.cache
def host_id() -> str:
    """This process's kernel boot and PID namespace (the host name where there is no /proc)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return f"host:{socket.gethostname()}"
    return f"{boot}:{namespace}"


def process_alive(where: str, pid: int, since: datetime) -> bool | None:
    """True or False for a process of this boot and PID namespace (``where`` is its
    ``host_id``); None (cannot tell) for any other.

    ``since``: when the process was known to run (a run's start); a process with that pid
    started later is another one."""
    if not pid or not where or where != host_id():
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return created <= since.timestamp() + 1.0
