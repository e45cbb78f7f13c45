"""A private PostgreSQL cluster for tests that must stop and start a server: initdb on a free
loopback port in a throwaway folder, run as the postgres user. Never the shared server."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import free_port


class Cluster:
    def __init__(self, *, standby: bool = False) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins or shutil.which("su") is None:
            pytest.fail("initdb is not installed (Debian package postgresql); it is needed to "
                        "start a private cluster", pytrace=False)
        self.bindir = Path(bins[-1]).parent
        # not under pytest's tmp folder: that one is readable by root only, and postgres runs it
        self.folder = Path(tempfile.mkdtemp(prefix="wellkept-pg-"))
        shutil.chown(self.folder, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres(f"{self.bindir}/initdb -D {self.folder}/data -A trust -U postgres")
        if standby:
            self._as_postgres(f"touch {self.folder}/data/standby.signal")

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        self._as_postgres(f"{self.bindir}/pg_ctl -D {self.folder}/data -l {self.folder}/log -w "
                          f"-o '-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1' "
                          "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(f"{self.bindir}/pg_ctl -D {self.folder}/data -m {mode} -w stop")

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{self.bindir}/pg_ctl -D {self.folder}/data "
                        "-m immediate stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
