"""Helpers for the file kinds' tests: the real logrotate, folder layouts, wellkept runs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli


def logrotate_bin() -> str:
    found = shutil.which("logrotate", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        pytest.fail("logrotate is not installed; `make tools` installs it (Debian package "
                    "logrotate)", pytrace=False)
    return found


def run_logrotate(folder: Path, directives: str,
                  logs: list[str]) -> subprocess.CompletedProcess[str]:
    """Real logrotate on ``logs`` (names in ``folder``), with its own config and state file in
    the test's folder: the system's config and state are never read or touched."""
    conf = folder.parent / f"{folder.name}.logrotate.conf"
    quoted = " ".join(json.dumps(str(folder / n)) for n in logs)
    conf.write_text(f"{quoted} {{\n{textwrap.indent(textwrap.dedent(directives), '    ')}\n}}\n")
    os.chmod(conf, 0o644)
    state = folder.parent / f"{folder.name}.logrotate.state"
    return subprocess.run([logrotate_bin(), "-s", str(state), str(conf)], capture_output=True,
                          text=True, timeout=60, check=False)


def seed_logrotate_state(folder: Path, logs: dict[str, str]) -> None:
    """Force when logrotate believes each log was last rotated (``YYYY-M-D-H:M:S``)."""
    state = folder.parent / f"{folder.name}.logrotate.state"
    lines = ["logrotate state -- version 2"] + [
        f'"{folder / name}" {when}' for name, when in logs.items()]
    state.write_text("\n".join(lines) + "\n")


def layout(folder: Path) -> dict[str, Any]:
    """Every file in the folder: its content (decompressed) and whether it was compressed."""
    out: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        elif path.name.endswith(".zst"):
            import zstandard

            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        out[path.name] = data.decode(errors="replace")
    return out


def wk(config: Path, *args: str) -> dict[str, Any]:
    proc = run_cli("-c", str(config), "run", *args, "-o", "json")
    assert proc.returncode in (0, 1), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return result
