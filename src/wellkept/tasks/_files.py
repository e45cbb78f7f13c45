"""Paths for the file kinds: relative to the config file's folder on the ``host``, or to the
folder of a ``files:///`` target, which they may not leave."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wellkept.connector import FileTree
from wellkept.context import RunContext
from wellkept.errors import TaskFailed
from wellkept.fs.globs import matches
from wellkept.records import Metrics, TaskResult
from wellkept.types import RunStatus
from wellkept.units import plural

GLOB_CHARS = "*?["


def resolve(ctx: RunContext, value: str) -> Path:
    """The absolute path ``value`` names for this run's target."""
    connector = ctx.connector
    root = connector.file_root() if isinstance(connector, FileTree) else None
    if root is None:
        return ctx.resolve_path(value)
    path = Path(os.path.normpath(root / Path(value).expanduser()))
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise TaskFailed(f"{value!r} is outside the folder of target {ctx.target_name} "
                         f"({root})")
    return path


#: folders a cleanup never takes as a rule's root: the whole system, its top-level folders
#: and the main ones below ``/usr`` and ``/var``. A rule names a folder below them
#: (``/var/log/app``, ``/srv/feeds``); ``/tmp`` and ``/var/tmp`` are fine as they are.
SYSTEM_FOLDERS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media",
    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
    "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var/lib", "/var/log",
    "/var/spool"})


def refuse_system_folder(path: Path) -> None:
    """Raise when ``path`` is (or links to) a system folder or the user's home folder: one
    slip in a rule (``path: /``, ``path: ~``) must not age out a whole system."""
    real = os.path.realpath(path)
    if real in SYSTEM_FOLDERS or real == os.path.realpath(os.path.expanduser("~")):
        raise TaskFailed(f"{path} is a system or home folder: a rule must name a folder "
                         "below it; nothing was cleaned")


def split_glob(path: Path) -> tuple[Path, str | None]:
    """(folder, name pattern) when the last component is a glob, else (path, None). Globs in
    folder components are refused at load time (see ``check_file_glob``)."""
    if any(c in path.name for c in GLOB_CHARS):
        return path.parent, path.name
    return path, None


def check_file_glob(value: str) -> str:
    """Only the last component of a log path may be a glob (``logs/*.log``)."""
    head = os.path.dirname(value)
    if any(c in head for c in GLOB_CHARS):
        raise ValueError(f"{value!r}: only the file name may hold wildcards, not its folders")
    if not value.strip():
        raise ValueError("an empty path")
    return value


def expand(folder_fd_names: list[str], pattern: str) -> list[str]:
    """Names in a folder listing that ``pattern`` matches, sorted."""
    return sorted(n for n in folder_fd_names if matches(pattern, n, n))


def result(message: str, metrics: Metrics, details: dict[str, Any], errors: list[str], *,
           some_done: bool, noun: str = "error", tail: str = "", cap: int = 100) -> TaskResult:
    """Completed; or, with errors, a partial failure when some of the work was done (the
    rest is still done: one file or month failing does not stop the others), else failed.
    The message names the first error, as the other kinds do: the text output shows no
    ``errors``."""
    if not errors:
        return TaskResult(message=message, metrics=metrics, details=details)
    status = RunStatus.PARTIAL_FAILURE if some_done else RunStatus.FAILED
    return TaskResult(status=status,
                      message=f"{message}; {plural(len(errors), noun)}{tail}: {errors[0]}",
                      metrics=metrics, details=details, errors=errors[:cap])
