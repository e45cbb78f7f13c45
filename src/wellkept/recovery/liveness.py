"""Whether the process behind a run (or a coordinator) still exists, when we can tell.

A lease expires after its full length; a process of *this* host that no longer exists is dead
now. Knowing it at once lets a coordinator restarted after ``kill -9`` recover its own runs
without waiting out their leases. A process id reused by a newer process is told apart by its
start time.
"""

from __future__ import annotations

import socket
from datetime import datetime


def process_alive(host: str, pid: int, since: datetime) -> bool | None:
    """True or False for a process of this host; None (cannot tell) for another host.

    ``since``: when the process was known to run (a run's start); a process with that pid
    started later is another one."""
    if not pid or host != socket.gethostname():
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
