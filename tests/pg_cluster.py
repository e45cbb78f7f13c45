"""Private PostgreSQL servers for tests that must stop, promote or replicate a server: made with
initdb in a temporary folder, on a free loopback port, run as the postgres user. The shared
server on 5432 is never touched."""

from __future__ import annotations

import contextlib
import glob
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import free_port


def _bindir() -> Path:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or shutil.which("su") is None:
        pytest.fail("initdb is not installed (Debian package postgresql); it is needed for "
                    "the tests that run their own PostgreSQL server", pytrace=False)
    return Path(bins[-1]).parent


class Cluster:
    """One private server. ``url`` is its superuser URL (trust auth, loopback only)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port, self.bindir = folder, port, _bindir()
        self.data = folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, command: str, timeout: float = 120) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True,
                       timeout=timeout)

    def start(self) -> None:
        self.run(f"{self.bindir}/pg_ctl -D {self.data} -l {self.folder}/log -w -o "
                 f"'-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1' start")

    def stop(self, mode: str = "fast") -> None:
        self.run(f"{self.bindir}/pg_ctl -D {self.data} -m {mode} -w stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _folder() -> Path:
    # not under pytest's tmp folder: that one is readable by root only, and postgres runs it
    folder = Path(tempfile.mkdtemp(prefix="wellkept-pg-"))
    shutil.chown(folder, "postgres")
    return folder


def new_cluster(*, standby: bool = False) -> Cluster:
    """A fresh server (``standby``: in recovery with no primary), started."""
    cluster = Cluster(_folder(), free_port())
    cluster.run(f"{cluster.bindir}/initdb -D {cluster.data} -A trust -U postgres")
    if standby:
        cluster.run(f"touch {cluster.data}/standby.signal")
    cluster.start()
    return cluster


def new_standby_of(primary: Cluster, slot: str) -> Cluster:
    """A streaming standby of ``primary`` (pg_basebackup -R, with a physical slot), started."""
    cluster = Cluster(_folder(), free_port())
    cluster.run(f"{cluster.bindir}/pg_basebackup -h 127.0.0.1 -p {primary.port} -U postgres "
                f"-D {cluster.data} -R -C -S {slot} -X stream")
    cluster.start()
    return cluster
