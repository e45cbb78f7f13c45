"""Fixtures for the coordinator tests: the plugin tasks beside the config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PLUGIN = Path(__file__).with_name("plugin_tasks.py")


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """The test's folder, holding plugin_tasks.py (load it with `plugins: [plugin_tasks]`)."""
    shutil.copy(PLUGIN, tmp_path / "plugin_tasks.py")
    return tmp_path


@pytest.fixture
def private_pg(postgres_admin_url: str):  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL server of this test alone (initdb on a free loopback port), to
    stop under a running wellkept: (url, stop)."""
    import glob
    import subprocess
    import tempfile

    from tests.helpers import free_port

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or shutil.which("su") is None:
        pytest.fail("initdb is not installed (Debian package postgresql); the lease tests "
                    "start a private server to stop", pytrace=False)
    bindir = Path(bins[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="wellkept-pg-"))  # postgres must read it
    shutil.chown(folder, "postgres")
    port = free_port()

    def as_postgres(command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True,
                       timeout=60)

    as_postgres(f"{bindir}/initdb -D {folder}/data -A trust -U postgres")
    as_postgres(f"{bindir}/pg_ctl -D {folder}/data -l {folder}/log -w -o "
                f"'-p {port} -k {folder} -c listen_addresses=127.0.0.1' start")
    stopped = {"done": False}

    def stop() -> None:
        if not stopped["done"]:
            as_postgres(f"{bindir}/pg_ctl -D {folder}/data -m immediate stop")
            stopped["done"] = True

    yield f"postgresql://postgres@127.0.0.1:{port}/postgres", stop
    stop()
    shutil.rmtree(folder, ignore_errors=True)
