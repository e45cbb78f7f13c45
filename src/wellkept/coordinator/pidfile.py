"""``wellkept serve --pidfile PATH``: one coordinator per pidfile, removed on exit.

The file is written atomically with this process's id. A file naming a live process refuses
the start (another coordinator runs from it); a stale one, left by a killed process, is
replaced.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from wellkept.errors import WellkeptError


class PidFileBusy(WellkeptError):
    """Another live process holds the pidfile."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def pidfile(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    try:
        other = int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        other = 0
    if other and other != os.getpid() and _alive(other):
        raise PidFileBusy(f"{path} names process {other}, which is running: another "
                          "coordinator uses this pidfile")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(path.read_text().strip() or 0) == os.getpid():
                path.unlink()
