"""MySQL and MariaDB through PyMySQL.

Every session sets ``lock_wait_timeout`` and ``innodb_lock_wait_timeout`` from the target's
``lock_timeout`` (MySQL's default waits a year for a metadata lock).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from wellkept.connector import (
    Connector,
    DumpInfo,
    DumpOptions,
    IntegrityReport,
    Ping,
    PurgeBatch,
    PurgeEstimate,
    PurgeRule,
    ReplicationStatus,
    RowSink,
    RowStream,
    StatsReport,
    Transport,
    is_local_host,
    smoke_answer,
)
from wellkept.connectors import _process
from wellkept.connectors._drivers import require
from wellkept.connectors._server import on_server
from wellkept.errors import ConnectionFailed, TaskFailed, Unavailable
from wellkept.records import Action, Metrics
from wellkept.redact import redact


class MySQLConnector(Connector):
    """MySQL and MariaDB servers (``mysql://user:password@host:3306/db``)."""

    name = "mysql"
    driver = "pymysql"
    default_port = 3306
    summary = "MySQL 8 and MariaDB 10.5+, through PyMySQL"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._conn: Any = None
        #: the session counting a running dump's rows (for ``interrupt``)
        self._snapshot: Any = None
        self._children = _process.Children()

    def _connect_args(self) -> dict[str, Any]:
        """PyMySQL's arguments for a session on this target (the main one or a dump's)."""
        u = urlsplit(self.settings.url)
        timeout = max(1, math.ceil(self.settings.timeout.total_seconds()))
        lock_s = max(1, math.ceil(self.settings.lock_timeout.total_seconds()))
        return {"host": u.hostname or "localhost", "port": u.port or 3306,
                "user": unquote(u.username or "root"), "password": unquote(u.password or ""),
                "database": unquote(u.path.lstrip("/")) or None, "connect_timeout": timeout,
                "read_timeout": math.ceil(self.settings.statement_timeout.total_seconds()),
                "autocommit": True, "charset": "utf8mb4",
                "init_command": f"SET SESSION lock_wait_timeout = {lock_s}, "
                                f"SESSION innodb_lock_wait_timeout = {lock_s}, "
                                "SESSION time_zone = '+00:00'"}

    def _session(self) -> Any:
        """A new session besides ``conn`` (the snapshot a dump's row counts are taken in)."""
        pymysql = require("pymysql", "mysql", "A MySQL/MariaDB target")
        try:
            return pymysql.connect(**self._connect_args())
        except pymysql.MySQLError as exc:
            raise ConnectionFailed(f"cannot connect to {self.address()}: "
                                   f"{redact(str(exc))}") from None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            pymysql = require("pymysql", "mysql", "A MySQL/MariaDB target")
            try:
                self._conn = pymysql.connect(**self._connect_args())
                with self._conn.cursor() as cur:
                    # READ COMMITTED: InnoDB then keeps locks only on the rows a batch really
                    # deletes, not on every row its scan passed
                    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            except pymysql.MySQLError as exc:
                raise ConnectionFailed(f"cannot connect to {self.address()}: "
                                       f"{redact(str(exc))}") from None
        return self._conn

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        with self.conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=str(version))

    def health(self) -> Ping:
        """Connections against max_connections, the longest running statement and, on a
        replica, its lag: four short statements on one connection. A replica whose
        replication threads are not both running is ``degraded``, with its lag unknown."""
        from wellkept.connectors import mysql_checks

        require("pymysql", "mysql", "A MySQL/MariaDB target")  # importing is not latency
        t0 = time.perf_counter()
        ping = self.ping()
        with self.errors("health"):
            conns = mysql_checks.connections(self.conn)
            longest = mysql_checks.longest_query_seconds(self.conn)
        replication = self.replication()
        details: dict[str, Any] = {
            "connections": conns["threads_connected"],
            "max_connections": conns["max_connections"],
            "connection_percent": conns["percent"], "query_seconds": longest,
            "replication_lag_seconds": replication["lag_seconds"]}
        if replication["role"] == "replica":
            details["replicating"] = replication["replicating"]
            if not replication["replicating"]:
                details["degraded"] = (f"replica not replicating ({replication['problem']}): "
                                       "lag unknown")
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=ping.version,
                    details=details)

    @contextlib.contextmanager
    def errors(self, what: str = "") -> Iterator[None]:
        """Map PyMySQL's errors: lock waits are Unavailable, a lost connection reconnects."""
        pymysql = require("pymysql", "mysql", "A MySQL/MariaDB target")
        prefix = f"{what}: " if what else ""
        try:
            yield
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code in (1205, 1213):  # lock wait timeout, deadlock
                raise Unavailable(f"{prefix}{exc.args[1] if len(exc.args) > 1 else exc} "
                                  "(lock_wait_timeout)") from None
            if code in (2006, 2013, 2003):  # gone away, lost, cannot connect
                self.close()
                raise ConnectionFailed(f"{prefix}lost the connection to {self.address()}: "
                                       f"{redact(str(exc))}") from None
            raise TaskFailed(f"{prefix}{redact(str(exc))}") from None
        except pymysql.err.InterfaceError as exc:  # used after the connection was lost
            self.close()
            raise ConnectionFailed(f"{prefix}lost the connection to {self.address()}"
                                   + (f": {redact(str(exc))}" if exc.args[1:2] != ("",) else "")
                                   ) from None
        except pymysql.MySQLError as exc:
            raise TaskFailed(f"{prefix}{redact(str(exc))}") from None

    def replication(self) -> dict[str, Any]:
        """This server's replication as a replica (``mysql_replication.summary``): role,
        replicating, lag (None while unknown) and why it is not replicating. Without the
        REPLICATION CLIENT privilege it says nothing (a standalone's answer)."""
        from wellkept.connectors import mysql_replication

        try:
            with self.errors("replication"):
                found = mysql_replication.links(self.conn)
        except TaskFailed:
            found = []
        return mysql_replication.summary(found)

    def replication_lag(self) -> float | None:
        """Seconds_Behind_Master of this server's replication channels (when the target is
        itself a replica): the largest; None when it replicates from nothing, or while a
        channel is not replicating (then it is unknown, not 0)."""
        from wellkept.connectors import mysql_replication

        with self.errors("replication lag"):
            found = mysql_replication.links(self.conn)
        lag: float | None = mysql_replication.summary(found)["lag_seconds"]
        return lag

    def replication_status(self) -> ReplicationStatus:
        """As a replica: its channels (the worst one is the upstream); as a primary: the
        replicas registered with it (SHOW SLAVE HOSTS; their lag is only known on them)."""
        from wellkept.connectors import mysql_replication

        with self.errors("replication status"):
            return mysql_replication.status(self.conn)

    # --- maintenance (table by table) -----------------------------------------------------------

    def _one_database(self, what: str) -> None:
        """Without a database in the URL, DATABASE() is NULL and every table listing is
        empty: the run would find nothing to do rather than say what is wrong."""
        if not unquote(urlsplit(self.settings.url).path.lstrip("/")):
            raise TaskFailed("the target URL names no database (mysql://user:password@host:"
                             f"3306/db); {what} works on the tables of one database")

    def plan_analyze(self, params: Any) -> list[Action]:
        from wellkept.connectors import mysql_maintenance

        self._one_database("analyze")

        with self.errors("planning analyze"):
            return mysql_maintenance.plan_analyze(self.conn, params)

    def plan_optimize(self, params: Any) -> list[Action]:
        from wellkept.connectors import mysql_maintenance

        self._one_database("optimize")

        with self.errors("planning optimize"):
            return mysql_maintenance.plan_optimize(self.conn, params)

    def apply(self, action: Action) -> Metrics:
        from wellkept.connectors import mysql_maintenance

        with self.errors(action.object):
            return mysql_maintenance.apply(self.conn, action)

    def check_integrity(self, params: Any) -> IntegrityReport:
        from wellkept.connectors import mysql_maintenance

        self._one_database("integrity")

        with self.errors("check"):
            checks, problems, details = mysql_maintenance.check_tables(self.conn, params)
        return IntegrityReport(checks=checks, problems=problems, details=details)

    def collect_stats(self, params: Any) -> StatsReport:
        from wellkept.connectors import mysql_checks

        with self.errors("stats"):
            return mysql_checks.stats(self.conn, params, self.replication)

    def purge_estimate(self, rule: PurgeRule, exact: bool = True) -> PurgeEstimate:
        from wellkept.connectors import mysql_purge

        self._one_database("cleanup")

        with self.errors(rule.table):
            return mysql_purge.estimate(self.conn, rule, exact)

    def purge_batch(self, rule: PurgeRule, after: Any, limit: int,
                    sink: RowSink | None = None) -> PurgeBatch:
        from wellkept.connectors import mysql_purge

        with self.errors(rule.table):
            return mysql_purge.batch(self.conn, rule, after, limit, sink)

    def key_exists(self, rule: PurgeRule, key: Any) -> bool:
        from wellkept.connectors import mysql_purge

        with self.errors(rule.table):
            return mysql_purge.key_exists(self.conn, rule, key)

    @contextlib.contextmanager
    def read_query(self, query: str, batch_size: int) -> Iterator[RowStream]:
        """The user's query in a ``START TRANSACTION READ ONLY`` (the server refuses writes
        to tables in it), read through an unbuffered cursor (SSCursor): rows come off the
        socket as they are used. Rolled back at the end."""
        from wellkept.connectors import _rows

        pymysql = require("pymysql", "mysql", "A MySQL/MariaDB target")
        with self.errors("query"):
            conn = self.conn
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
            try:
                with conn.cursor(pymysql.cursors.SSCursor) as cur:
                    cur.execute(query)
                    yield _rows.stream(cur, batch_size)
            finally:
                with contextlib.suppress(Exception):
                    conn.rollback()

    def transport(self) -> Transport:
        """PyMySQL is given no TLS options by this connector: a MySQL target is reached in
        plain text unless the server is on this machine."""
        host = urlsplit(self.settings.url).hostname or "localhost"
        return Transport(host=host, local=is_local_host(host), tls=False,
                         how="mysql:// (no TLS option in the URL)")

    def interrupt(self) -> None:
        """Stop a running dump or restore tool, and kill the statements of wellkept's own
        sessions (KILL QUERY from a new session: PyMySQL cannot cancel in-band)."""
        self._children.kill()
        sessions = [c for c in (self._conn, self._snapshot) if c is not None]
        if not sessions:
            return
        with contextlib.suppress(Exception):
            control = self._session()
            try:
                with control.cursor() as cur:
                    for session in sessions:
                        cur.execute(f"KILL QUERY {int(session.thread_id())}")
            finally:
                control.close()

    def close(self) -> None:
        if self._conn is not None:
            # already gone (the server closed it): nothing left to release
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # --- backup (Dumpable) ----------------------------------------------------------------------

    def _database(self) -> str:
        from wellkept.connectors import mysql_dump

        return mysql_dump.target(self.settings.url).database

    def dump_estimate(self) -> int:
        from wellkept.connectors import mysql_dump

        with self.errors("backup"):
            return mysql_dump.estimate(self.conn, self._database())

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        from wellkept.connectors import mysql_dump

        with self.errors("backup"):
            self._snapshot = self._session()
            try:
                return mysql_dump.dump(self.conn, self._snapshot, self.settings.url, out, options,
                                       self._children)
            finally:
                snapshot, self._snapshot = self._snapshot, None
                with contextlib.suppress(Exception):
                    snapshot.close()

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        from wellkept.connectors import mysql_dump

        return mysql_dump.list_dump(source, fmt, options)

    @classmethod
    def create_database(cls, url: str, settings: Any) -> None:
        """CREATE DATABASE on ``url``'s server, with the server's default character set (the
        dump sets each table's own)."""
        from wellkept.connectors import mysql_dump

        name = mysql_dump.target(url).database
        on_server(cls, settings, mysql_dump.with_database(url, ""), "creating the database",
                  lambda conn: mysql_dump.create_database(conn, name))

    @classmethod
    def drop_created_database(cls, url: str, settings: Any) -> None:
        from wellkept.connectors import mysql_dump

        name = mysql_dump.target(url).database

        def drop(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {mysql_dump.quote(name)}")
        on_server(cls, settings, mysql_dump.with_database(url, ""), "dropping the database",
                  drop)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        from wellkept.connectors import mysql_dump

        with self.errors("scratch database"), mysql_dump.scratch(self.conn,
                                                                 self.settings.url) as url:
            yield url

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        from wellkept.connectors import mysql_dump

        mysql_dump.restore(self.settings.url, source, fmt, options, self._children)

    def content_counts(self) -> dict[str, int]:
        from wellkept.connectors import mysql_dump

        with self.errors("counting rows"):
            return mysql_dump.counts(self.conn, self._database())

    def is_empty(self) -> bool:
        from wellkept.connectors import mysql_dump

        with self.errors("checking the database"):
            return mysql_dump.is_empty(self.conn, self._database())

    def smoke(self, query: str) -> Any:
        with self.errors("smoke query"), self.conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone() if cur.description else None
        return smoke_answer(row)
