"""What rotating one log does, step by step, in logrotate's order: compress the previous
rotation (delaycompress, or one an interrupted run left uncompressed, or whose compressed copy
it left beside it), remove rotations past
``maxage``, shift ``log.1 … log.N`` up and drop the one that falls off (or, with ``dateext``,
drop the oldest dated ones past ``rotate``), move the log aside (rename and create a new one,
or copy and truncate it), then compress it.

The plan is computed from the folder's listing before anything is touched, so a dry run reports
exactly the steps and bytes of a real run.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wellkept.fs.compress import EXTENSIONS


@dataclass(frozen=True)
class Options:
    """The rotation directives that shape names and steps."""

    rotate: int
    compress: str | None
    delaycompress: bool
    copytruncate: bool
    create: bool
    dateext: bool
    dateformat: str
    maxage_seconds: float | None


@dataclass(frozen=True)
class Step:
    """One file operation: ``delete`` ``name``; ``rename``/``compress`` ``name`` -> ``to``;
    ``rotate`` the log itself to ``to`` (rename + create, or copytruncate); ``discard``
    ``name`` once its compressed copy ``to`` is checked to hold the same bytes."""

    op: str
    name: str
    to: str | None = None
    bytes: int = 0
    reason: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "name": self.name}
        if self.to is not None:
            out["to"] = self.to
        if self.bytes:
            out["bytes"] = self.bytes
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    problem: str | None = None


def _date_glob(fmt: str) -> str:
    """A regular expression for names made with a strftime ``dateformat``."""
    widths = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
              "S": r"\d{2}", "s": r"\d+", "y": r"\d{2}", "j": r"\d{3}", "V": r"\d{2}"}
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(widths.get(fmt[i + 1], ".+"))
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


def rotated_pattern(log: str, opts: Options) -> re.Pattern[str]:
    """Names of this log's rotations (``app.log.3``, ``app.log.3.gz``, ``app.log-20261201``)."""
    ext = "|".join(re.escape(e) for e in EXTENSIONS.values())
    middle = _date_glob(opts.dateformat) if opts.dateext else r"\.\d+"
    return re.compile(re.escape(log) + f"(?P<mid>{middle})(?P<ext>{ext})?", re.DOTALL)


def build(log: str, size: int, sizes: dict[str, tuple[int, float]], opts: Options,
          now: datetime) -> Plan:
    """The steps to rotate ``log`` (of ``size`` bytes) in a folder whose regular files are
    ``sizes`` (name -> (bytes, mtime)). The folder is simulated as steps are planned, so each
    step sees the names the previous ones leave."""
    plan = Plan()
    ext = EXTENSIONS[opts.compress] if opts.compress else ""
    pattern = rotated_pattern(log, opts)
    present = dict(sizes)

    def rotations() -> list[str]:
        found = [(m.group("mid"), n) for n in present if (m := pattern.fullmatch(n))]
        return [n for _mid, n in sorted(found)]

    def move(op: str, src: str, dst: str, reason: str = "") -> None:
        plan.steps.append(Step(op, src, dst, present[src][0], reason))
        present[dst] = present.pop(src)

    def delete(name: str, reason: str) -> None:
        plan.steps.append(Step("delete", name, bytes=present.pop(name)[0], reason=reason))

    if opts.compress:
        # without delaycompress, a rotation left uncompressed was left by a run interrupted
        # (or a disk that filled) before its compression: compress it now, or its name would
        # block every later rotation
        why = ("delaycompress: the previous rotation" if opts.delaycompress
               else "left uncompressed by an interrupted run")
        for name in rotations():
            if pattern.fullmatch(name).group("ext"):  # type: ignore[union-attr]
                continue
            if name + ext not in present:
                move("compress", name, name + ext, why)
            else:  # killed between putting the copy in place and removing its source
                plan.steps.append(Step("discard", name, name + ext, present.pop(name)[0],
                                       "compressed by an interrupted run"))
    if opts.maxage_seconds is not None:
        limit = now.timestamp() - opts.maxage_seconds
        for name in rotations():
            if present[name][1] < limit:
                delete(name, "older than maxage")
    if opts.dateext:
        target = log + now.strftime(opts.dateformat)
        if target in present or target + ext in present:
            return Plan(problem=f"destination {target} already exists, skipping rotation")
        if opts.rotate >= 0:
            existing = rotations()
            for name in existing[:max(len(existing) + 1 - opts.rotate, 0)]:
                delete(name, f"beyond rotate {opts.rotate}")
    else:
        target = f"{log}.1"
        top = opts.rotate if opts.rotate >= 0 else max(
            (int(m.group("mid")[1:]) for n in present if (m := pattern.fullmatch(n))),
            default=0)
        if opts.rotate > 0 and f"{log}.{top}{ext}" in present:
            delete(f"{log}.{top}{ext}", f"beyond rotate {opts.rotate}")
        for i in range(top - 1 if opts.rotate >= 0 else top, 0, -1):
            if f"{log}.{i}{ext}" in present:
                move("rename", f"{log}.{i}{ext}", f"{log}.{i + 1}{ext}")
    how = "copytruncate" if opts.copytruncate else ("rename, create" if opts.create
                                                   else "rename")
    plan.steps.append(Step("rotate", log, target, size, how))
    present[target] = (size, now.timestamp())
    final = target
    if opts.compress and not opts.delaycompress:
        move("compress", target, target + ext)
        final = target + ext
    if opts.rotate == 0:
        delete(final, "rotate 0")
    return plan


def list_folder(dir_fd: int) -> dict[str, tuple[int, float]]:
    """Each regular file in the folder: (bytes, mtime)."""
    sizes: dict[str, tuple[int, float]] = {}
    for name in os.listdir(dir_fd):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            sizes[name] = (st.st_size, st.st_mtime)
    return sizes
