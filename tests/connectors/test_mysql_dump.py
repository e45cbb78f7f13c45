"""MySQL/MariaDB backups on a real MariaDB server: dump, list, restore into a scratch database
and compare, and keep the password out of every process's command line."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from wellkept.config import TargetSettings
from wellkept.connector import Dumpable, DumpInfo, DumpOptions
from wellkept.connectors import _process, mysql_dump
from wellkept.connectors.mysql import MySQLConnector
from wellkept.errors import TaskFailed

#: a table name a careless dump or count would break on: backtick, semicolon, newline
HOSTILE = "we`ird; DROP TABLE x;\n--name"
PASSWORD = "s3cret-pw"


def root() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           autocommit=True, charset="utf8mb4")


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def run(url: str, *statements: str) -> None:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE {q(database(url))}")
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def rows(url: str, table: str) -> list[tuple[Any, ...]]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {q(database(url))}.{q(table)} ORDER BY 1")
            return list(cur.fetchall())
    finally:
        conn.close()


def connector(url: str) -> MySQLConnector:
    return MySQLConnector("t", TargetSettings(url=url))


def fill(url: str) -> None:
    """Tables with text, binary data (every byte value, NUL, CR/LF, quotes), a hostile name,
    a trigger, a view and a procedure."""
    run(url,
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100), data LONGBLOB, "
        "note TEXT) CHARACTER SET utf8mb4",
        "INSERT INTO items VALUES (1, 'plain', NULL, NULL), "
        "(2, 'ünïcødé ✓ 🐘', %s, 'a\\nCREATE TABLE `fake` (x int);\\n-- Dump completed')"
        % ("0x" + bytes(range(256)).hex() + "00000d0a27225c"),
        f"CREATE TABLE {q(HOSTILE)} (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(50))",
        f"CREATE TRIGGER shout BEFORE INSERT ON {q(HOSTILE)} FOR EACH ROW "
        "SET NEW.label = UPPER(NEW.label)",
        f"INSERT INTO {q(HOSTILE)} (label) VALUES ('one'), ('two'), (NULL)",
        "CREATE TABLE empty_one (id INT PRIMARY KEY)",
        "CREATE VIEW item_names AS SELECT id, name FROM items",
        "CREATE PROCEDURE noop() BEGIN CREATE TABLE IF NOT EXISTS `not_in_dump` (a INT); END")
    conn = root()
    with conn.cursor() as cur:  # a larger table: several MiB of output, several write calls
        cur.execute(f"USE {q(database(url))}")
        cur.execute("CREATE TABLE bulk (id INT PRIMARY KEY, payload BLOB)")
        cur.executemany("INSERT INTO bulk VALUES (%s, %s)",
                        [(i, os.urandom(8000)) for i in range(400)])
        cur.execute("ANALYZE TABLE bulk")  # fresh sizes for dump_estimate
        cur.fetchall()
    conn.close()


def take_dump(url: str, workdir: Path, out: Path) -> DumpInfo:
    c = connector(url)
    try:
        with out.open("wb") as fh:
            return c.dump(fh, DumpOptions(workdir=workdir))
    finally:
        c.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(mode=0o700)
    return folder


def test_dump_list_restore_roundtrip(mysql_db: str, workdir: Path, tmp_path: Path) -> None:
    fill(mysql_db)
    source = connector(mysql_db)
    assert isinstance(source, Dumpable)
    assert source.dump_estimate() > 400 * 8000
    assert not source.is_empty()
    out = tmp_path / "db.sql"
    info = take_dump(mysql_db, workdir, out)

    assert (info.format, info.suffix, info.database) == ("mysql_sql", ".sql", database(mysql_db))
    assert info.counts == {"items": 2, HOSTILE: 3, "empty_one": 0, "bulk": 400}
    assert info.counts_exact is False
    assert "MariaDB" in info.server_version
    assert list(info.tools) == ["mariadb-dump"] and info.tools["mariadb-dump"] != "unknown"
    assert list(workdir.iterdir()) == []  # the option file is gone
    text = out.read_bytes()
    assert b"CREATE DATABASE" not in text and b"\nUSE " not in text

    options = DumpOptions(workdir=workdir)
    with out.open("rb") as fh:
        listing = source.list_dump(fh, "mysql_sql", options)
    # the procedure's CREATE TABLE and the note's text are not tables of the dump
    assert sorted(listing) == sorted(f"table {t}" for t in ("items", HOSTILE, "empty_one",
                                                            "bulk"))

    with source.scratch() as url:
        scratch_db = database(url)
        assert scratch_db.startswith("wk_verify_") and scratch_db != database(mysql_db)
        assert url == mysql_db.rsplit("/", 1)[0] + "/" + scratch_db
        dest = connector(url)
        try:
            assert dest.is_empty()
            with out.open("rb") as fh:
                dest.restore(fh, info.format, options)
            assert dest.content_counts() == info.counts
            for table in ("items", HOSTILE, "empty_one", "bulk"):
                assert rows(url, table) == rows(mysql_db, table), table
            assert dest.smoke("SELECT name FROM item_names WHERE id = 2") == "ünïcødé ✓ 🐘"
            assert dest.smoke("SELECT name FROM items WHERE id = 99") is None
            assert dest.smoke("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE "
                              "ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'noop'") == 1
            run(url, f"INSERT INTO {q(HOSTILE)} (label) VALUES ('four')")  # the trigger came
            assert rows(url, HOSTILE)[-1][1] == "FOUR"
            assert not dest.is_empty()
        finally:
            dest.close()
        assert rows(mysql_db, HOSTILE)[-1][1] is None  # the source was not touched
    conn = root()
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (scratch_db,))
        assert cur.fetchone()[0] == 0  # the scratch database was dropped
    conn.close()
    assert list(workdir.iterdir()) == []
    source.close()


def test_scratch_drops_what_a_crashed_restore_test_left(mysql_db: str) -> None:
    from wellkept.connectors import _scratch

    hour_ago = time.time() - 3600
    stale, busy = _scratch.new_name(hour_ago), _scratch.new_name(hour_ago)
    fresh = _scratch.new_name()
    for name in (stale, busy, fresh):
        run(mysql_db, f"CREATE DATABASE {q(name)}")
    holder = root()
    try:
        with holder.cursor() as cur:
            cur.execute(f"USE {q(busy)}")  # a session in it: a restore test still running
        with connector(mysql_db).scratch() as url:
            conn = root()
            with conn.cursor() as cur:
                cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                names = {r[0] for r in cur.fetchall()}
            conn.close()
            assert stale not in names and {busy, fresh, database(url)} <= names
    finally:
        holder.close()
        for name in (stale, busy, fresh):
            run(mysql_db, f"DROP DATABASE IF EXISTS {q(name)}")


def test_truncated_dump_fails(mysql_db: str, workdir: Path, tmp_path: Path) -> None:
    fill(mysql_db)
    out = tmp_path / "db.sql"
    take_dump(mysql_db, workdir, out)
    whole = out.read_bytes()
    c = connector(mysql_db)
    options = DumpOptions(workdir=workdir)
    last = whole.rstrip().rfind(b"\n")
    for cut in (len(whole) // 2, last):  # mid-INSERT, and at a statement's end
        truncated = tmp_path / f"cut{cut}.sql"
        truncated.write_bytes(whole[:cut])
        with truncated.open("rb") as fh, pytest.raises(TaskFailed, match="truncated"):
            c.list_dump(fh, "mysql_sql", options)
    # restoring the copy cut at a statement's end loads without a SQL error: still a failure
    with c.scratch() as url:
        dest = connector(url)
        with truncated.open("rb") as fh, pytest.raises(TaskFailed, match="truncated"):
            dest.restore(fh, "mysql_sql", options)
        dest.close()
    with out.open("rb") as fh, pytest.raises(TaskFailed, match="cannot read a 'pg_custom'"):
        c.restore(fh, "pg_custom", options)
    c.close()


def test_list_dump_memory_is_bounded() -> None:
    """One multi-megabyte line is scanned without being kept."""
    scanner = mysql_dump._Scanner()
    scanner.feed(b"CREATE TABLE `a``b` (\n  x int\n);\nINSERT INTO `a``b` VALUES ")
    for _ in range(50):
        scanner.feed(b"(0x" + b"ab" * 100_000 + b"),")
    scanner.feed(b"(1);\n-- Dump completed on 2024-01-01\n")
    scanner.finish()
    assert scanner.tables == ["a`b"] and scanner.complete
    assert len(scanner._line) == 0


def test_list_dump_reads_names_across_chunks(tmp_path: Path) -> None:
    """Names split between reads or holding newlines; bodies between DELIMITER lines."""
    text = (b"CREATE TABLE `x``y;\n z` (\n  a int\n);\nDELIMITER ;;\n"
            b"CREATE TABLE `in_body` (a int);\n;;\nDELIMITER ;\n"
            b"CREATE TABLE `last` (a int);\n-- Dump completed\n")
    scanner = mysql_dump._Scanner()
    for i in range(len(text)):
        scanner.feed(text[i:i + 1])
    scanner.finish()
    assert scanner.tables == ["x`y;\n z", "last"] and scanner.complete


def test_option_file_escapes_values(workdir: Path) -> None:
    """The client tools read back exactly the credentials written (quotes, '#', backslash)."""
    hostile = 'p"w#d \\x\'y\nz'
    target = mysql_dump.Target("db.example", 3307, "us#er", hostile, "app")
    with mysql_dump.option_file(target, workdir) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.parent == workdir
        out = subprocess.run(["my_print_defaults", f"--defaults-file={path}", "client"],
                             capture_output=True, text=True, check=True).stdout
    assert out.splitlines(keepends=False)[:2] == ["--user=us#er", "--password=p\"w#d \\x'y"]
    assert f"--password={hostile}\n--host=db.example\n--port=3307\n--protocol=tcp\n" in out
    assert not path.exists()


@pytest.fixture
def dump_user(mysql_db: str) -> Iterator[str]:
    """A MariaDB account with a password, allowed on the test database only."""
    conn = root()
    with conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'wk_dump'@'127.0.0.1'")
        cur.execute("CREATE USER 'wk_dump'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        cur.execute(f"GRANT ALL ON {q(database(mysql_db))}.* TO 'wk_dump'@'127.0.0.1'")
    try:
        yield f"mysql://wk_dump:{PASSWORD}@127.0.0.1:3306/{database(mysql_db)}"
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'wk_dump'@'127.0.0.1'")
        conn.close()


class Watcher:
    """Polls /proc for dump tool processes and records their argv, environment and the
    option file they were given (and its mode, while they run)."""

    TOOLS = ("mariadb-dump", "mysqldump")

    def __init__(self) -> None:
        self.seen: dict[int, tuple[list[str], bytes]] = {}
        self.option_modes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
                    if Path(argv[0].decode()).name not in self.TOOLS:
                        continue
                    environ = Path(entry.path, "environ").read_bytes()
                except (OSError, UnicodeDecodeError, IndexError):
                    continue
                args = [a.decode(errors="replace") for a in argv if a]
                self.seen[int(entry.name)] = (args, environ)
                for arg in args:
                    if arg.startswith("--defaults-file="):
                        option = arg.split("=", 1)[1]
                        with contextlib.suppress(OSError):  # gone already: the tool ended
                            self.option_modes[option] = os.stat(option).st_mode
            time.sleep(0.002)


class SlowWriter:
    """Holds the dump tool on a full pipe for a while, so the watcher surely sees it."""

    def __init__(self, path: Path) -> None:
        self.fh = path.open("wb")

    def write(self, data: bytes) -> int:
        time.sleep(0.3)
        return self.fh.write(data)


def test_password_never_in_argv(dump_user: str, mysql_db: str, workdir: Path,
                                tmp_path: Path) -> None:
    run(mysql_db, "CREATE TABLE bulk (id INT PRIMARY KEY, payload BLOB)")
    conn = root()
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {q(database(mysql_db))}.bulk VALUES (%s, %s)",
                        [(i, os.urandom(8000)) for i in range(400)])
    conn.close()
    c = connector(dump_user)
    writer = SlowWriter(tmp_path / "db.sql")
    with Watcher() as watcher:
        info = c.dump(writer, DumpOptions(workdir=workdir))  # type: ignore[arg-type]
    writer.fh.close()
    c.close()

    assert info.counts == {"bulk": 400}
    assert watcher.seen, "the dump tool was never seen running"
    for args, environ in watcher.seen.values():
        assert not any(PASSWORD in a for a in args), args
        assert PASSWORD.encode() not in environ
    dumps = [args for args, _ in watcher.seen.values() if args[1:] != ["--version"]]
    assert dumps, "the dump itself was never seen running"
    for args in dumps:  # --defaults-file (only that file: never ~/.my.cnf) must come first
        assert args[1].startswith("--defaults-file="), args
    assert watcher.option_modes, "the option file was not seen"
    for path, mode in watcher.option_modes.items():
        assert Path(path).parent == workdir and stat.S_IMODE(mode) == 0o600
        assert not Path(path).exists()
    assert list(workdir.iterdir()) == []
    with (tmp_path / "db.sql").open("rb") as fh:
        assert c.list_dump(fh, "mysql_sql", DumpOptions(workdir=workdir)) == ["table bulk"]


def test_wrong_password_fails_and_cleans_up(dump_user: str, workdir: Path,
                                            tmp_path: Path) -> None:
    from wellkept.errors import ConnectionFailed

    c = connector(dump_user.replace(PASSWORD, "wrong-pw"))
    with (tmp_path / "x.sql").open("wb") as fh, pytest.raises(ConnectionFailed) as failed:
        c.dump(fh, DumpOptions(workdir=workdir))
    assert "wrong-pw" not in str(failed.value)
    assert list(workdir.iterdir()) == []


def test_interrupt_stops_the_dump_tool(mysql_db: str, workdir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A task timeout (interrupt from another thread) kills the running tool at once."""
    fake = tmp_path / "mariadb-dump"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'fake MariaDB' && exit 0\n"
                    "exec sleep 30\n")
    fake.chmod(0o700)
    monkeypatch.setattr(_process, "tool", lambda *names: str(fake))
    run(mysql_db, "CREATE TABLE t (id INT PRIMARY KEY)")
    c = connector(mysql_db)
    timer = threading.Timer(0.5, c.interrupt)
    timer.start()
    started = time.monotonic()
    with (tmp_path / "x.sql").open("wb") as fh, pytest.raises(TaskFailed, match="stopped"):
        c.dump(fh, DumpOptions(workdir=workdir))
    assert time.monotonic() - started < 10
    timer.join()
    assert list(workdir.iterdir()) == []
    assert c.smoke("SELECT 1") == 1  # the connector still works afterwards
    c.close()
