"""Carry out a rotation plan through the log folder's descriptor.

``rotate`` either renames the log aside and creates an empty one in its place, with the old
file's owner and mode unless ``create_mode``/``create_owner``/``create_group`` say otherwise
(logrotate's ``create``), or copies it and truncates it in place (``copytruncate``): for
programs that cannot reopen their log, at the price of losing whatever they write between the
end of the copy and the truncate. The copy is repeated while the log keeps growing, so that
window is as short as the copy of the last few bytes; its length is measured and reported.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from wellkept.errors import TaskFailed
from wellkept.fs.compress import compress_at, fsync_folder, holds_same
from wellkept.rotation.plan import Plan, Step

CHUNK = 1024 * 1024
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Create:
    """How the new, empty log is made (``create``); None fields keep the old file's."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass
class Outcome:
    files_deleted: int = 0
    bytes_deleted: int = 0
    files_compressed: int = 0
    bytes_compressed_in: int = 0
    bytes_compressed_out: int = 0
    copytruncate_window_ms: float | None = None
    done: list[Step] = field(default_factory=list)


def execute(dir_fd: int, plan: Plan, method: str | None, level: int | None,
            copytruncate: bool, create: Create | None, out: Outcome | None = None) -> Outcome:
    """Carry out ``plan``'s steps in order; ``out`` (given by the caller) says how far it got
    when a step fails."""
    out = out if out is not None else Outcome()
    for step in plan.steps:
        if step.op == "delete":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(step.name, dir_fd=dir_fd)
                out.files_deleted += 1
                out.bytes_deleted += step.bytes
        elif step.op == "rename":
            assert step.to is not None
            _no_clobber(dir_fd, step.to)
            os.rename(step.name, step.to, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        elif step.op == "discard":
            assert method is not None and step.to is not None
            if not holds_same(dir_fd, step.name, method):  # type: ignore[arg-type]
                raise TaskFailed(f"{step.name!r} and {step.to!r} both exist and differ; "
                                 "move one of them away (wellkept will not choose)")
            os.unlink(step.name, dir_fd=dir_fd)
            out.files_deleted += 1
            out.bytes_deleted += step.bytes
        elif step.op == "compress":
            assert method is not None
            done = compress_at(dir_fd, step.name, method, level)  # type: ignore[arg-type]
            out.files_compressed += 1
            out.bytes_compressed_in += done.bytes_in
            out.bytes_compressed_out += done.bytes_out
        elif step.op == "rotate":
            assert step.to is not None
            _no_clobber(dir_fd, step.to)
            if copytruncate:
                out.copytruncate_window_ms = _copy_truncate(dir_fd, step.name, step.to)
            else:
                _rename_create(dir_fd, step.name, step.to, create)
        else:
            raise AssertionError(step.op)
        out.done.append(step)
        fsync_folder(dir_fd)
    return out


def _no_clobber(dir_fd: int, name: str) -> None:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    raise TaskFailed(f"{name!r} already exists; not overwritten")


def _rename_create(dir_fd: int, log: str, target: str, create: Create | None) -> None:
    st = os.stat(log, dir_fd=dir_fd, follow_symlinks=False)
    os.rename(log, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    if create is None:
        return
    mode = create.mode if create.mode is not None else st.st_mode & 0o7777
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        uid = create.uid if create.uid is not None else st.st_uid
        gid = create.gid if create.gid is not None else st.st_gid
        if (uid, gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # not root: the file stays ours
                os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after fchown, which may clear setuid bits
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_truncate(dir_fd: int, log: str, target: str) -> float:
    """Copy the log to ``target`` until it stops growing, then truncate it; return how long
    (ms) passed between the last read and the truncate: what was written then is lost. The
    copy is on disk before the log is emptied; a copy that fails (a full disk) is removed
    and the log is left whole."""
    src = os.open(log, os.O_RDWR | _NOFOLLOW, dir_fd=dir_fd)
    try:
        st = os.fstat(src)
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW,
                      st.st_mode & 0o7777, dir_fd=dir_fd)
        truncated = False
        try:
            with contextlib.suppress(PermissionError):
                os.fchown(dst, st.st_uid, st.st_gid)
            _copy(src, dst)
            os.fsync(dst)
            _copy(src, dst)  # what was appended during the fsync
            last_read = time.perf_counter()
            os.ftruncate(src, 0)
            truncated = True
            window = (time.perf_counter() - last_read) * 1000
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(dst)
        except BaseException:
            if not truncated:  # the log still holds every line: drop the partial copy
                with contextlib.suppress(OSError):
                    os.unlink(target, dir_fd=dir_fd)
            raise
        finally:
            os.close(dst)
        return window
    finally:
        os.close(src)


def _copy(src: int, dst: int) -> None:
    """Copy from ``src``'s offset to its end. ``os.write`` may write less than it is given
    (a disk filling up): the rest is written again, and so fails loudly, never dropped."""
    while chunk := os.read(src, CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
