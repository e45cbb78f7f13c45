"""PostgreSQL backups with pg_dump and pg_restore.

The dump runs in a snapshot wellkept exports (``pg_export_snapshot``), and the row counts the
manifest records are taken in that same snapshot, so a restore test compares like with like
even on a busy database. pg_dump writes uncompressed (``--compress=0``); wellkept compresses
with multi-threaded zstd, which is faster than pg_dump's own single-threaded gzip. The custom
format streams; the directory format (``jobs: N``) dumps tables in parallel to a private
folder and is then streamed as a tar. The password reaches the tools only as PGPASSWORD.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from wellkept.connector import DumpInfo, DumpOptions
from wellkept.connectors import _process, _scratch
from wellkept.errors import TaskFailed, UsageError

log = logging.getLogger(__name__)

_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """The conninfo for ``-d`` (without the password) and the environment carrying it."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: str(v) for k, v in conninfo_to_dict(
        url.replace("postgres://", "postgresql://", 1)).items() if v is not None}
    env = {"PGAPPNAME": "wellkept", "PGCONNECT_TIMEOUT": "10"}
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


def with_database(url: str, name: str) -> str:
    """The same URL (user, password, host, options) naming another database. Not through
    urlunsplit: it drops the ``//`` of an empty host (``postgresql:///app?host=/run/postgresql``,
    a Unix socket), which libpq then refuses as no URL at all. A ``dbname`` in the query string
    goes: libpq would read it over the path."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    u = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(u.query, keep_blank_values=True)
                       if k != "dbname"], quote_via=quote)
    return (f"{u.scheme}://{u.netloc}/{quote(name, safe='')}" + (f"?{query}" if query else "")
            + (f"#{u.fragment}" if u.fragment else ""))


def database_of(url: str) -> str:
    """The database a URL names, read as libpq reads it (``?dbname=`` over the path);
    ``restore --create`` needs it named."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        name = conninfo_to_dict(url.replace("postgres://", "postgresql://", 1)).get("dbname")
    except psycopg.ProgrammingError as exc:
        from wellkept.redact import redact

        raise UsageError(f"--into: {redact(str(exc))}") from None
    if not name:
        raise UsageError("--create: the URL names no database (postgresql://host/NAME)")
    return str(name)


def create_database(conn: Any, name: str) -> None:
    from psycopg import sql

    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        raise UsageError(f"database {name!r} exists already; leave out --create to restore "
                         "into it")
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_database(conn: Any, name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def counts(conn: Any) -> dict[str, int]:
    from psycopg import sql

    out = {}
    for schema, name in conn.execute(_TABLES).fetchall():
        out[f"{schema}.{name}"] = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(
            sql.Identifier(schema, name))).fetchone()[0]
    return out


def dump(conn: Any, url: str, out: BinaryIO, options: DumpOptions,
         children: _process.Children) -> DumpInfo:
    import psycopg

    pg_dump = _process.tool("pg_dump")
    dsn, env = libpq(url)
    directory = options.format == "directory" or (options.jobs > 1 and options.format != "custom")
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1),
                         application_name="wellkept-snapshot") as snap:
        snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = snap.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = row[0]
        counted: dict[str, int] = {}
        failure: list[BaseException] = []

        def count() -> None:  # in the dump's snapshot, while it runs
            try:
                counted.update(counts(snap))
            except BaseException as exc:
                failure.append(exc)

        counter = threading.Thread(target=count, name="wellkept-counts", daemon=True)
        counter.start()
        base = [pg_dump, "--no-password", f"--snapshot={snapshot}", "--compress=0"]
        try:
            if directory:
                folder = options.workdir / "dump"
                _process.run([*base, "--format=directory", f"--jobs={max(options.jobs, 1)}",
                              "-f", str(folder), "-d", dsn], env=env, children=children,
                             what="pg_dump")
                _tar_folder(folder, out)
            else:
                _process.run([*base, "--format=custom", "-d", dsn], env=env,
                             children=children, stdout=out, what="pg_dump")
        finally:
            counter.join()
        if failure:
            raise TaskFailed(f"counting rows in the dump's snapshot failed: {failure[0]}")
        version = conn.execute("SHOW server_version").fetchone()[0]
        database = conn.execute("SELECT current_database()").fetchone()[0]
    return DumpInfo(format="pg_directory" if directory else "pg_custom",
                    suffix=".pgdir.tar" if directory else ".pgdump", database=database,
                    server_version=version, tools={"pg_dump": _process.version(pg_dump)},
                    counts=counted,
                    details={"jobs": options.jobs} if directory else {})


def _tar_folder(folder: Path, out: BinaryIO) -> None:
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)


def _untar(source: BinaryIO, folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, EOFError) as exc:
        raise TaskFailed(f"the directory-format dump is damaged: {exc}") from None
    return folder


def list_dump(source: BinaryIO, fmt: str, options: DumpOptions,
              children: _process.Children) -> list[str]:
    pg_restore = _process.tool("pg_restore")
    if fmt == "pg_directory":
        folder = _untar(source, options.workdir / "list")
        text = _process.run([pg_restore, "--list", str(folder)], children=children,
                            what="pg_restore --list")
    else:
        text = _process.run([pg_restore, "--list"], stdin=source, children=children,
                            what="pg_restore --list")
    return [ln for ln in text.decode(errors="replace").splitlines()
            if ln and not ln.startswith(";")]


#: the least maintenance_work_mem a restore's index builds get (pg_restore's own docs advise
#: raising it for restores); a server already set higher keeps its own
RESTORE_MAINTENANCE_WORK_MEM = 256 * 1024 * 1024


def restore_options(conn: Any) -> str:
    """PGOPTIONS for pg_restore's sessions: roomier index builds, and no wait for the WAL
    flush at each commit (a crash mid-restore means restoring again either way)."""
    row = conn.execute("SELECT pg_size_bytes(current_setting('maintenance_work_mem'))"
                       ).fetchone()
    memory = max(int(row[0]), RESTORE_MAINTENANCE_WORK_MEM) // 1024
    return f"-c maintenance_work_mem={memory}kB -c synchronous_commit=off"


def restore(url: str, source: BinaryIO, fmt: str, options: DumpOptions,
            children: _process.Children, session_options: str = "",
            between: Callable[[], None] | None = None) -> None:
    """Restore a dump with pg_restore. With ``between``, in two passes: the tables' definitions
    (pre-data), then ``between()``, then the data and everything built on it (indexes,
    constraints); a custom dump is a stream read once, so the first pass's bytes are kept and
    read again by the second. An unlogged restore (``options.unlogged``) also leaves out
    publications and subscriptions: the source's replication set-up means nothing in a
    throwaway database, and a publication cannot hold an unlogged table."""
    pg_restore = _process.tool("pg_restore")
    dsn, env = libpq(url)
    if session_options:  # after the user's own, so that ours apply
        env["PGOPTIONS"] = " ".join(filter(None, (os.environ.get("PGOPTIONS"), session_options)))
    base = [pg_restore, "--no-password", "--no-owner", "--no-privileges", "--exit-on-error",
            *(["--clean", "--if-exists"] if options.replace else []),
            *(["--no-publications", "--no-subscriptions"] if options.unlogged else []),
            "-d", dsn]
    data = ("--section=data", "--section=post-data")

    def run(*args: str, stdin: BinaryIO | None = None) -> None:
        _process.run([*base, *args], env=env, stdin=stdin, children=children, what="pg_restore")

    if fmt == "pg_directory":
        folder = str(_untar(source, options.workdir / "restore"))
        jobs = f"--jobs={max(options.jobs, 1)}"
        if between is None:
            run(jobs, folder)
        else:
            run("--section=pre-data", folder)
            between()
            run(jobs, *data, folder)
    elif fmt == "pg_custom":
        if between is None:
            run(stdin=source)
        else:
            with _Replay(source, options.workdir) as replay:
                run("--section=pre-data", stdin=replay.first)
                between()
                run(*data, stdin=replay.again)
    else:
        raise TaskFailed(f"a PostgreSQL target cannot restore a {fmt!r} backup")


class _Replay:
    """A stream read twice from its start: what the first reader took (pg_restore's first
    pass stops after the table of contents, a few KB to MB) is kept, in memory or spilled
    to the workdir, and handed to the second reader before the rest of the stream."""

    def __init__(self, source: BinaryIO, workdir: Path) -> None:
        self.source = source
        self.kept = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b",  # noqa: SIM115
                                                    dir=str(workdir))
        self.first: BinaryIO = _Reader(self._read_first)  # type: ignore[assignment]
        self.again: BinaryIO = _Reader(self._read_again)  # type: ignore[assignment]
        self._replaying = False

    def __enter__(self) -> _Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kept.close()

    def _read_first(self, size: int) -> bytes:
        data = self.source.read(size)
        self.kept.write(data)
        return data

    def _read_again(self, size: int) -> bytes:
        if not self._replaying:
            self.kept.seek(0)
            self._replaying = True
        return self.kept.read(size) or self.source.read(size)


class _Reader(io.RawIOBase):
    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._read(size)


#: the tables a scratch restore loads unlogged: ordinary tables of the user's schemas, not
#: those an extension owns (the extension's script made them)
_LOGGED_TABLES = _TABLES.replace("c.relkind = 'r'", "c.relkind = 'r' AND c.relpersistence = 'p'")
#: what keeps a database logged: a partitioned or foreign table cannot be made unlogged in
#: PostgreSQL 15, and a logged table may not reference an unlogged one
_STAYS_LOGGED = ("SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON "
                 "n.oid = c.relnamespace WHERE c.relkind IN ('p', 'f') AND n.nspname NOT IN "
                 "('pg_catalog', 'information_schema'))")


def unlog_tables(conn: Any) -> int:
    """Make every table just created by a scratch restore's first pass UNLOGGED (they are
    empty, so this is instant), so that loading them writes no WAL: a restore test proves the
    dump loads and its counts match, and needs no crash safety. All or none, in one
    transaction; when one cannot be switched the restore simply stays logged. Returns how
    many tables were switched."""
    import psycopg
    from psycopg import sql

    if conn.execute(_STAYS_LOGGED).fetchone()[0]:
        return 0
    tables = conn.execute(_LOGGED_TABLES).fetchall()
    try:
        with conn.transaction():
            for schema, name in tables:
                conn.execute(sql.SQL("ALTER TABLE {}.{} SET UNLOGGED").format(
                    sql.Identifier(schema), sql.Identifier(name)))
    except psycopg.Error as exc:
        if conn.broken:
            raise
        log.info("restore test: the tables stay logged (%s)", exc)
        return 0
    log.info("restore test: %d tables load unlogged", len(tables))
    return len(tables)


@contextmanager
def scratch(conn: Any, url: str) -> Iterator[str]:
    """A new empty database on the same server, dropped (even with sessions) afterwards; the
    ones crashed restore tests left are dropped first."""
    from psycopg import sql

    _drop_stale_scratch(conn)
    name = _scratch.new_name()
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield with_database(url, name)
    finally:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def _drop_stale_scratch(conn: Any) -> None:
    import psycopg
    from psycopg import sql

    idle = conn.execute("SELECT d.datname FROM pg_database d WHERE d.datname LIKE %s AND NOT "
                        "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
                        (_scratch.LIKE,)).fetchall()
    for (name,) in idle:
        if _scratch.is_stale(name):
            try:  # without FORCE: a session that just arrived keeps it
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                log.warning("dropped %s, a scratch database a stopped restore test left", name)
            except psycopg.errors.ObjectInUse:
                pass


def is_empty(conn: Any) -> bool:
    found = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                         "c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
                         "'information_schema') AND n.nspname NOT LIKE 'pg\\_%%' AND "
                         "c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')").fetchone()[0]
    return int(found) == 0


