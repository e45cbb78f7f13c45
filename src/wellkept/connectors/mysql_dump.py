"""MySQL and MariaDB backups with mariadb-dump (or mysqldump) and the mariadb client.

The dump is plain SQL for the URL's database alone, without CREATE DATABASE or USE, so it can
be restored under another name (the scratch database of a restore test). ``--single-transaction``
gives one consistent InnoDB snapshot, but the client tools cannot share it, so the row counts
the manifest records come from a second snapshot opened just before the dump starts: close,
not exact (``counts_exact=False``).

The credentials reach the tools in a private option file (mode 0600, in the backup's scratch
folder, removed at once), never in argv, where any local user could read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote as url_quote
from urllib.parse import unquote, urlsplit, urlunsplit

from wellkept.connector import DumpInfo, DumpOptions
from wellkept.connectors import _process, _scratch
from wellkept.errors import TaskFailed

log = logging.getLogger(__name__)

FORMAT = "mysql_sql"
SUFFIX = ".sql"
#: the last line mariadb-dump and mysqldump write; a dump without it was cut short
COMPLETED = b"-- Dump completed"

_DUMP_ARGS = [
    "--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
    "--default-character-set=utf8mb4",
    # MySQL 8 wants the PROCESS privilege for tablespaces, which one database never needs
    "--no-tablespaces",
    # the client's own limit; one row longer than the default 16-24M would fail the dump
    "--max-allowed-packet=1G",
]
_RESTORE_ARGS = [
    # raw bytes pass untouched, and client commands (\! shell …) in a dump are not run
    "--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G",
]
#: what the row counts cover: MariaDB lists system-versioned tables apart from base tables
_TABLES = """
SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
ORDER BY TABLE_NAME
"""
#: a character set or collation name, safe to write into a statement unquoted
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Target:
    """What a ``mysql://`` URL names, read exactly as the connector's own session reads it."""

    host: str
    port: int
    user: str
    password: str
    database: str


def target(url: str) -> Target:
    u = urlsplit(url)
    database = unquote(u.path.lstrip("/"))
    if not database:
        raise TaskFailed("the target URL names no database (mysql://user:password@host:3306/db)"
                         "; backups and restores work on one database")
    return Target(host=u.hostname or "localhost", port=u.port or 3306,
                  user=unquote(u.username or "root"), password=unquote(u.password or ""),
                  database=database)


def with_database(url: str, name: str) -> str:
    """The same URL (user, password, host, port, query) naming another database."""
    u = urlsplit(url)
    return urlunsplit((u.scheme, u.netloc, "/" + url_quote(name, safe=""), u.query, u.fragment))


def create_database(conn: Any, name: str) -> None:
    from wellkept.errors import UsageError

    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        if cur.fetchone():
            raise UsageError(f"database {name!r} exists already; leave out --create to restore "
                             "into it")
        cur.execute(f"CREATE DATABASE {quote(name)}")


def quote(name: str) -> str:
    """A backtick-quoted identifier; a backtick inside is doubled, so any name is safe."""
    return "`" + name.replace("`", "``") + "`"


def _option(value: str) -> str:
    """A double-quoted option-file value: '#' inside quotes is no comment, and the client
    tools undo these backslash escapes."""
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"),
                         ("\t", "\\t")):
        value = value.replace(raw, escaped)
    return f'"{value}"'


@contextmanager
def option_file(t: Target, workdir: Path) -> Iterator[Path]:
    """A [client] option file with the credentials, readable by this user only, removed after.

    ``protocol=tcp``: the connector's PyMySQL session always uses TCP, and the tools would
    otherwise take the Unix socket for ``localhost`` (another account for root)."""
    fd, name = tempfile.mkstemp(prefix="wk-client-", suffix=".cnf", dir=workdir)  # mode 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"[client]\nuser={_option(t.user)}\npassword={_option(t.password)}\n"
                     f"host={_option(t.host)}\nport={t.port}\nprotocol=tcp\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def counts(conn: Any, database: str, stop: threading.Event | None = None) -> dict[str, int]:
    """Exact rows per table of ``database`` (in the session's current transaction)."""
    out: dict[str, int] = {}
    with conn.cursor() as cur:
        cur.execute(_TABLES, (database,))
        names = [str(row[0]) for row in cur.fetchall()]
        for name in names:
            if stop is not None and stop.is_set():
                raise TaskFailed("counting rows was cancelled")
            cur.execute(f"SELECT COUNT(*) FROM {quote(database)}.{quote(name)}")
            out[name] = int(cur.fetchone()[0])
    return out


def estimate(conn: Any, database: str) -> int:
    """The data and index bytes InnoDB reports (a dump is usually of the same order)."""
    with conn.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) "
                    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,))
        return int(cur.fetchone()[0])


def is_empty(conn: Any, database: str) -> bool:
    """No tables, views or sequences in ``database``."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                    (database,))
        return int(cur.fetchone()[0]) == 0


class _Counter:
    """Counts rows in ``snap``'s snapshot from a thread, so the dump starts right after."""

    def __init__(self, snap: Any, database: str) -> None:
        self.counted: dict[str, int] = {}
        self.error: BaseException | None = None
        self._snap = snap
        self._database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wellkept-counts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.counted = counts(self._snap, self._database, self._stop)
            self._snap.commit()
        except BaseException as exc:
            self.error = exc

    def cancel(self, conn: Any) -> None:
        """Stop counting (the dump failed): kill the running COUNT from the other session,
        rather than wait for it on a large table."""
        self._stop.set()
        with contextlib.suppress(Exception), conn.cursor() as cur:
            cur.execute(f"KILL QUERY {int(self._snap.thread_id())}")

    def join(self) -> None:
        self._thread.join()


def dump(conn: Any, snap: Any, url: str, out: BinaryIO, options: DumpOptions,
         children: _process.Children) -> DumpInfo:
    """Dump the URL's database into ``out``; ``snap`` is a fresh session for the counts."""
    t = target(url)
    path = _process.tool("mariadb-dump", "mysqldump")
    tool_version = _process.version(path)
    args = list(_DUMP_ARGS)
    if "mariadb" not in tool_version.lower():
        # Oracle's mysqldump on a GTID server writes SET @@GLOBAL.GTID_PURGED, which fails
        # when restored on any server that has executed transactions (the scratch database's)
        args.append("--set-gtid-purged=OFF")
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        server_version = str(cur.fetchone()[0])
    with option_file(t, options.workdir) as cnf:
        with snap.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        counter = _Counter(snap, t.database)
        try:
            # "--": a database named like an option is still the database
            _process.run([path, f"--defaults-file={cnf}", *args, "--", t.database],
                         children=children, stdout=out, what=Path(path).name)
        except BaseException:
            counter.cancel(conn)
            raise
        finally:
            counter.join()
    if counter.error is not None:
        raise TaskFailed(f"counting rows for the manifest failed: {counter.error}")
    return DumpInfo(format=FORMAT, suffix=SUFFIX, database=t.database,
                    server_version=server_version, tools={Path(path).name: tool_version},
                    counts=counter.counted, counts_exact=False)


class _Scanner:
    """Reads a dump's SQL as it streams by, keeping only the head of each line (constant
    memory: one INSERT line can be gigabytes), for the tables it creates and its last line.

    Routines, triggers and events come between ``DELIMITER ;;`` lines, where a body's own
    ``CREATE TABLE`` is skipped. A name may hold a newline, so a ``CREATE TABLE`` whose name
    is still open at the end of a line continues on the next."""

    HEAD = 4096
    _NAME = re.compile(rb"CREATE TABLE `((?:[^`]|``)*)`(?!`)")  # a doubled ` is no end

    def __init__(self) -> None:
        self.tables: list[str] = []
        self.last = b""
        self._line = bytearray()
        self._pending: bytearray | None = None
        self._delimiter = b";"

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            end = len(chunk) if nl < 0 else nl
            room = self.HEAD - len(self._line)
            if room > 0:
                self._line += chunk[start:min(end, start + room)]
            if nl < 0:
                return
            self._end_line()
            start = nl + 1

    def finish(self) -> None:
        if self._line:
            self._end_line()

    @property
    def complete(self) -> bool:
        return self.last.startswith(COMPLETED)

    def _end_line(self) -> None:
        line = bytes(self._line)
        self._line.clear()
        if line.strip():
            self.last = line.strip()
        if self._pending is not None:
            self._pending += b"\n" + line
            self._name(self._pending)
        elif line.startswith(b"DELIMITER "):
            self._delimiter = line[len(b"DELIMITER "):].strip()
        elif self._delimiter == b";" and line.startswith(b"CREATE TABLE `"):
            self._name(bytearray(line))

    def _name(self, text: bytearray) -> None:
        found = self._NAME.match(text)
        if found is not None:
            self.tables.append(found.group(1).replace(b"``", b"`").decode(errors="replace"))
            self._pending = None
        elif len(text) < self.HEAD:
            self._pending = text  # the name goes on past this line
        else:
            self._pending = None  # no identifier is this long: not a name after all


class _Watched:
    """A reader that scans what passes through it, so a restore can tell a cut-short dump."""

    def __init__(self, source: BinaryIO) -> None:
        self.scanner = _Scanner()
        self._source = source

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self.scanner.feed(chunk)
        else:
            self.scanner.finish()
        return chunk


def _check_format(fmt: str) -> None:
    if fmt != FORMAT:
        raise TaskFailed(f"a MySQL/MariaDB target cannot read a {fmt!r} backup "
                         f"(it restores {FORMAT!r})")


def _truncated(what: str) -> TaskFailed:
    return TaskFailed(f"{what}: the dump is truncated: it does not end with the "
                      f"'{COMPLETED.decode()}' line the dump tool writes last")


def list_dump(source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
    """The tables a dump creates; a dump without its final line is an error."""
    _check_format(fmt)
    scanner = _Scanner()
    while chunk := source.read(_process.CHUNK):
        scanner.feed(chunk)
    scanner.finish()
    if not scanner.complete:
        raise _truncated("list")
    return [f"table {name}" for name in scanner.tables]


def restore(url: str, source: BinaryIO, fmt: str, options: DumpOptions,
            children: _process.Children) -> None:
    """Load a dump into the URL's database with the mariadb client (stops at the first
    error). A dump cut short at a statement's end would load without an error, so the end
    is checked too: the database then holds a partial restore, and the restore fails."""
    _check_format(fmt)
    t = target(url)
    path = _process.tool("mariadb", "mysql")
    watched = _Watched(source)
    with option_file(t, options.workdir) as cnf:
        _process.run([path, f"--defaults-file={cnf}", *_RESTORE_ARGS,
                      f"--database={t.database}"], stdin=cast(BinaryIO, watched),
                     children=children, what=Path(path).name)
    if not watched.scanner.complete:
        raise _truncated("restore")


@contextmanager
def scratch(conn: Any, url: str) -> Iterator[str]:
    """A new empty database on the same server, with the source's character set and
    collation (what new routines and tables inherit), dropped afterwards; the ones crashed
    restore tests left are dropped first."""
    t = target(url)
    name = _scratch.new_name()
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                    "%s AND SCHEMA_NAME NOT IN (SELECT DB FROM information_schema.PROCESSLIST "
                    "WHERE DB IS NOT NULL)", (_scratch.LIKE,))
        for (stale,) in cur.fetchall():
            if _scratch.is_stale(stale):
                cur.execute(f"DROP DATABASE IF EXISTS {quote(stale)}")
                log.warning("dropped %s, a scratch database a stopped restore test left", stale)
        cur.execute("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                    "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (t.database,))
        row = cur.fetchone()
        charset = ""
        if row is not None and all(_WORD.fullmatch(str(v)) for v in row):
            charset = f" CHARACTER SET {row[0]} COLLATE {row[1]}"
        cur.execute(f"CREATE DATABASE {quote(name)}{charset}")
    try:
        yield with_database(url, name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
