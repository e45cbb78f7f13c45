"""A private MariaDB primary and replica for the replication tests: made with
mariadb-install-db in the test's folder, each on its own free loopback port and socket, with
binary logging on the primary and classic replication (CHANGE MASTER TO) on the replica. The
shared server on 3306 is never touched (its binary log is off, and other tests use it)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port

MARIADBD = "/usr/sbin/mariadbd"
#: small enough to make and start in a few seconds, and to copy for the replica
SMALL = ("--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M")
REPL_USER, REPL_PASSWORD = "repl", "repl-secret"


class Server:
    """One private mariadbd. ``url(db)`` is its root URL (no password, loopback only)."""

    def __init__(self, datadir: Path, sockets: Path, name: str, server_id: int,
                 *extra: str) -> None:
        self.datadir, self.name, self.server_id = datadir, name, server_id
        self.port = free_port()
        self.socket = sockets / f"{name}.sock"  # short: a socket path has ~107 bytes
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: str = "") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        log = self.datadir.parent / f"{self.name}.err"
        # as root, mariadbd refuses to run unless told which user to be
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", "--user=root", f"--datadir={self.datadir}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
             f"--pid-file={self.datadir.parent / (self.name + '.pid')}",
             f"--log-error={log}", f"--server-id={self.server_id}", "--skip-name-resolve",
             *SMALL, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.connect().close()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    pytest.fail(f"private mariadbd {self.name} did not start:\n{text}",
                                pytrace=False)
                time.sleep(0.1)

    def connect(self, db: str | None = None) -> Any:
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                               database=db, autocommit=True, connect_timeout=2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: a clean shutdown
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def execute(conn: Any, *statements: str) -> list[dict[str, Any]]:
    """Run ``statements``; the last one's rows as dicts."""
    rows: list[dict[str, Any]] = []
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            names = [d[0] for d in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return rows


def slave_status(conn: Any) -> dict[str, Any]:
    rows = execute(conn, "SHOW SLAVE STATUS")
    return rows[0] if rows else {}


@contextlib.contextmanager
def primary_and_replica(folder: Path) -> Iterator[tuple[Server, Server]]:
    """A started primary (binary log on) and a replica replicating from it, with a database
    ``app`` on both; both stopped and their sockets removed afterwards, even on failure."""
    if shutil.which("mariadb-install-db") is None or not Path(MARIADBD).exists():
        pytest.fail("mariadb-install-db and mariadbd are needed (Debian package "
                    "mariadb-server) for the tests that run their own MariaDB servers",
                    pytrace=False)
    sockets = Path(tempfile.mkdtemp(prefix="wk-my-"))
    base = folder / "datadir"
    servers: list[Server] = []
    try:
        done = subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--auth-root-authentication-method=normal",
             f"--datadir={base}", "--user=root", "--skip-test-db", *SMALL],
            capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"mariadb-install-db failed:\n{done.stdout}\n{done.stderr}",
                        pytrace=False)
        # the replica starts from a copy of the fresh datadir (MariaDB keeps no server UUID
        # that a copy would share; server ids tell the two apart)
        shutil.copytree(base, folder / "replica" / "data", symlinks=True)
        shutil.move(base, folder / "primary" / "data")
        primary = Server(folder / "primary" / "data", sockets, "primary", 1,
                         f"--log-bin={folder / 'primary' / 'data' / 'binlog'}",
                         "--binlog-format=ROW")
        replica = Server(folder / "replica" / "data", sockets, "replica", 2,
                         "--relay-log=relay", "--read-only")
        servers += [primary, replica]
        primary.start()
        replica.start()
        with contextlib.closing(primary.connect()) as conn:
            execute(conn, f"CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY "
                          f"'{REPL_PASSWORD}'",
                    f"GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1'",
                    "CREATE DATABASE app",
                    "CREATE TABLE app.orders (id INT PRIMARY KEY, total INT) ENGINE=InnoDB",
                    "INSERT INTO app.orders VALUES (1, 10)")
        with contextlib.closing(replica.connect()) as conn:
            execute(conn, f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', "
                          f"MASTER_PORT={primary.port}, MASTER_USER='{REPL_USER}', "
                          f"MASTER_PASSWORD='{REPL_PASSWORD}', MASTER_CONNECT_RETRY=1, "
                          "MASTER_USE_GTID=slave_pos",
                    "START SLAVE")
            deadline = time.monotonic() + 20
            while not execute(conn, "SELECT 1 FROM information_schema.TABLES WHERE "
                                    "TABLE_SCHEMA = 'app' AND TABLE_NAME = 'orders'"):
                if time.monotonic() > deadline:
                    pytest.fail(f"the replica did not catch up: {slave_status(conn)}",
                                pytrace=False)
                time.sleep(0.1)
        yield primary, replica
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(sockets, ignore_errors=True)
