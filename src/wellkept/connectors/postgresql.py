"""PostgreSQL through psycopg 3.

Every session sets ``lock_timeout``, ``statement_timeout``, ``application_name=wellkept`` and
``TimeZone=UTC`` from the target's settings, so nothing wellkept sends can queue behind a lock
for long. The connection is in autocommit: VACUUM and the CONCURRENTLY statements cannot run in
a transaction block, and each is sent alone. Statements whose cancellation would waste the work
done so far (VACUUM, REINDEX CONCURRENTLY) run with ``statement_timeout = 0`` and rely on the
lock timeout and the task's own time limit instead.

A replica (``pg_is_in_recovery()``) refuses every mutating task, which then ends ``skipped``.

The pg_* modules import psycopg, so they are imported inside the methods: listing task kinds
and engines must work without the driver installed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from wellkept.connector import (
    AdviceReport,
    Connector,
    DumpInfo,
    DumpOptions,
    ExporterSample,
    HealthReport,
    Ping,
    PurgeBatch,
    PurgeEstimate,
    PurgeRule,
    ReplicationStatus,
    RoleAudit,
    RowSink,
    RowStream,
    StatsReport,
    Transport,
    smoke_answer,
)
from wellkept.connectors import _process
from wellkept.connectors._drivers import require
from wellkept.connectors._server import on_server
from wellkept.errors import ConnectionFailed, TaskFailed, Unavailable
from wellkept.records import Action, Metrics
from wellkept.redact import redact

#: retries of a statement whose lock wait hit lock_timeout, and the first pause between them
LOCK_RETRIES = 2
LOCK_BACKOFF_SECONDS = 0.5


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000)


class PostgresConnector(Connector):
    """PostgreSQL servers (``postgresql://user:password@host:5432/db``)."""

    name = "postgresql"
    driver = "psycopg"
    default_port = 5432
    summary = "PostgreSQL 12+, through psycopg 3"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._conn: Any = None
        self._children = _process.Children()

    def address(self) -> str:
        """As the base class, but a URL without a host (libpq's Unix socket, or a ``host``
        parameter naming the socket's folder or the server) is shown as written, without
        its other parameters: ``postgresql:///shop?host=/run/postgresql``, not localhost."""
        from urllib.parse import parse_qs, urlsplit

        u = urlsplit(self.settings.url)
        if u.hostname:
            return super().address()
        host = parse_qs(u.query).get("host", [""])[0]
        port = f":{u.port}" if u.port else ""
        return f"{self.name}://{port}{u.path or '/'}" + (f"?host={host}" if host else "")

    # --- connection -----------------------------------------------------------------------------

    @property
    def conn(self) -> Any:
        if self._conn is None:
            psycopg = require("psycopg", "postgres", "A PostgreSQL target")
            url = self.settings.url.replace("postgres://", "postgresql://", 1)
            options = (f"-c lock_timeout={_ms(self.settings.lock_timeout)} "
                       f"-c statement_timeout={_ms(self.settings.statement_timeout)} "
                       "-c TimeZone=UTC")
            timeout = max(1, math.ceil(self.settings.timeout.total_seconds()))
            try:
                try:
                    # PostgreSQL 14+: if wellkept is killed (kill -9), the server notices the
                    # closed socket within 2 s and aborts the statement, releasing its locks
                    self._conn = psycopg.connect(
                        url, autocommit=True, application_name="wellkept", connect_timeout=timeout,
                        options=options + " -c client_connection_check_interval=2000")
                except psycopg.Error as exc:
                    if "client_connection_check_interval" not in str(exc):
                        raise
                    self._conn = psycopg.connect(url, autocommit=True, options=options,
                                                 application_name="wellkept",
                                                 connect_timeout=timeout)
            except psycopg.Error as exc:
                # one line: libpq adds a tab-indented hint ("Is the server running…")
                raise ConnectionFailed(f"cannot connect to {self.address()}: "
                                       f"{' '.join(redact(str(exc)).split())}") from None
        return self._conn

    @contextlib.contextmanager
    def errors(self, what: str = "") -> Iterator[None]:
        """Map psycopg's errors onto wellkept's; a lost connection is reopened next time."""
        psycopg = require("psycopg", "postgres", "A PostgreSQL target")
        errors = psycopg.errors
        prefix = f"{what}: " if what else ""
        try:
            yield
        except errors.LockNotAvailable:
            waited = self.settings.lock_timeout.total_seconds()
            raise Unavailable(f"{prefix}could not get its lock within {waited:g}s "
                              "(lock_timeout); another session holds it") from None
        except errors.QueryCanceled as exc:
            raise TaskFailed(f"{prefix}cancelled: {str(exc).strip()}") from None
        except psycopg.OperationalError as exc:
            self._drop()
            raise ConnectionFailed(f"{prefix}lost the connection to {self.address()}: "
                                   f"{redact(str(exc)).strip()}") from None
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.closed:
                self._drop()
            raise TaskFailed(f"{prefix}{redact(str(exc)).strip()}") from None

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = None

    @contextlib.contextmanager
    def unbounded_statement(self) -> Iterator[None]:
        """Lift statement_timeout for work a cancel would waste (VACUUM, REINDEX …)."""
        self.conn.execute("SET statement_timeout = 0")
        try:
            yield
        finally:
            if self._conn is not None and not self._conn.closed:
                with contextlib.suppress(Exception):
                    self._conn.execute("RESET statement_timeout")

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        with self.errors("ping"):
            row = self.conn.execute("SELECT current_setting('server_version'), "
                                    "pg_is_in_recovery()").fetchone()
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=f"PostgreSQL {row[0]}",
                    details={"in_recovery": bool(row[1])})

    _HEALTH = """SELECT current_setting('server_version'), pg_is_in_recovery(),
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
           current_setting('max_connections')::int,
           (SELECT extract(epoch FROM max(now() - query_start)) FROM pg_stat_activity
             WHERE state = 'active' AND backend_type = 'client backend'
               AND datname = current_database() AND pid <> pg_backend_pid()),
           CASE WHEN pg_is_in_recovery() THEN
             CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                  ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
           ELSE (SELECT extract(epoch FROM max(coalesce(replay_lag, write_lag, flush_lag)))
                 FROM pg_stat_replication) END"""

    def health(self) -> Ping:
        """One round trip: connections against max_connections (server-wide, as the limit
        is), the longest active query in this target's database, and replication lag (this
        replica's, or the slowest replica's on a primary)."""
        require("psycopg", "postgres", "A PostgreSQL target")  # importing is not latency
        t0 = time.perf_counter()
        with self.errors("health"):
            row = self.conn.execute(self._HEALTH).fetchone()
        version, recovery, conns, max_conns, longest, lag = row
        details: dict[str, Any] = {
            "in_recovery": bool(recovery), "connections": int(conns),
            "max_connections": int(max_conns),
            "connection_percent": round(100.0 * int(conns) / max(int(max_conns), 1), 1),
            "query_seconds": round(float(longest), 1) if longest is not None else 0.0,
            "replication_lag_seconds": round(float(lag), 1) if lag is not None else None}
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000,
                    version=f"PostgreSQL {version}", details=details)

    @classmethod
    def exporter_samples(cls, target: str, stats: dict[str, Any] | None,
                         up: bool | None) -> list[ExporterSample]:
        from wellkept.connectors import pg_exporter

        return pg_exporter.samples(target, stats, up)

    def write_blocker(self) -> str | None:
        with self.errors("recovery check"):
            in_recovery = self.conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        if in_recovery:
            return (f"{self.target_name} is a replica in recovery (pg_is_in_recovery() is "
                    "true), where VACUUM, ANALYZE and writes are not allowed")
        return None

    def replication_lag(self) -> float | None:
        """The replay lag of the slowest streaming replica (pg_stat_replication)."""
        with self.errors("replication lag"):
            row = self.conn.execute(
                "SELECT max(extract(epoch FROM coalesce(replay_lag, write_lag, flush_lag))) "
                "FROM pg_stat_replication").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def replication_status(self) -> ReplicationStatus:
        """A standby reports its WAL receiver and replay lag; a primary its
        pg_stat_replication rows and the slots no replica is using."""
        from wellkept.connectors import pg_replication

        with self.errors("replication status"):
            return pg_replication.status(self.conn)

    def interrupt(self) -> None:
        self._children.kill()  # pg_dump / pg_restore, when a backup is running
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.cancel_safe(timeout=5.0)

    def close(self) -> None:
        self._drop()

    # --- planned maintenance --------------------------------------------------------------------

    def plan_vacuum(self, params: Any) -> list[Action]:
        with self.errors("planning vacuum"):
            from wellkept.connectors import pg_maintenance

            return pg_maintenance.plan_vacuum(self.conn, params,
                                              self.settings.lock_timeout.total_seconds())

    def plan_analyze(self, params: Any) -> list[Action]:
        with self.errors("planning analyze"):
            from wellkept.connectors import pg_maintenance

            return pg_maintenance.plan_analyze(self.conn, params)

    def plan_reindex(self, params: Any) -> list[Action]:
        with self.errors("planning reindex"):
            from wellkept.connectors import pg_maintenance

            return pg_maintenance.plan_reindex(self.conn, params)

    def plan_views(self, params: Any) -> list[Action]:
        with self.errors("planning views"):
            from wellkept.connectors import pg_maintenance

            return pg_maintenance.plan_views(self.conn, params)

    def apply(self, action: Action) -> Metrics:
        """Run one planned statement. A lock wait that times out is retried, with backoff,
        a couple of times: the lock queue often clears within seconds, and giving up on the
        first short timeout would skip the object for a whole schedule period."""
        retries = LOCK_RETRIES if action.meta.get("retry", True) else 0
        for attempt in range(retries + 1):
            try:
                with self.errors():
                    from wellkept.connectors import pg_maintenance

                    return pg_maintenance.apply(self, action)
            except Unavailable:
                if attempt == retries:
                    raise
                time.sleep(LOCK_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    # --- checks ---------------------------------------------------------------------------------

    def collect_stats(self, params: Any) -> StatsReport:
        with self.errors("stats"):
            from wellkept.connectors import pg_checks

            return pg_checks.stats(self.conn, params)

    def estimate_bloat(self, params: Any) -> StatsReport:
        with self.errors("bloat"):
            from wellkept.connectors import pg_checks

            return pg_checks.bloat(self.conn, params)

    def check_index_health(self, params: Any) -> HealthReport:
        with self.errors("index health"):
            from wellkept.connectors import pg_checks

            return pg_checks.index_health(self.conn, params)

    # --- purge ----------------------------------------------------------------------------------

    def purge_estimate(self, rule: PurgeRule, exact: bool = True) -> PurgeEstimate:
        with self.errors(rule.table):
            from wellkept.connectors import pg_purge

            return pg_purge.estimate(self.conn, rule, exact)

    def purge_batch(self, rule: PurgeRule, after: Any, limit: int,
                    sink: RowSink | None = None) -> PurgeBatch:
        with self.errors(rule.table):
            from wellkept.connectors import pg_purge

            return pg_purge.batch(self.conn, rule, after, limit, sink)

    def key_exists(self, rule: PurgeRule, key: Any) -> bool:
        with self.errors(rule.table):
            from wellkept.connectors import pg_purge

            return pg_purge.key_exists(self.conn, rule, key)

    # --- backup (Dumpable) ----------------------------------------------------------------------

    def dump_estimate(self) -> int:
        with self.errors("backup"):
            return int(self.conn.execute("SELECT pg_database_size(current_database())"
                                         ).fetchone()[0])

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        with self.errors("backup"):
            from wellkept.connectors import pg_dump

            return pg_dump.dump(self.conn, self.settings.url, out, options, self._children)

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        from wellkept.connectors import pg_dump

        return pg_dump.list_dump(source, fmt, options, self._children)

    @classmethod
    def create_database(cls, url: str, settings: Any) -> None:
        """CREATE DATABASE (from template0, as a dump expects), through the server's
        ``postgres`` database, with ``url``'s user and password."""
        from wellkept.connectors import pg_dump

        name = pg_dump.database_of(url)
        on_server(cls, settings, pg_dump.with_database(url, "postgres"),
                  "creating the database", lambda conn: pg_dump.create_database(conn, name))

    @classmethod
    def drop_created_database(cls, url: str, settings: Any) -> None:
        from wellkept.connectors import pg_dump

        name = pg_dump.database_of(url)
        on_server(cls, settings, pg_dump.with_database(url, "postgres"),
                  "dropping the database", lambda conn: pg_dump.drop_database(conn, name))

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        from wellkept.connectors import pg_dump

        with self.errors("scratch database"), pg_dump.scratch(self.conn, self.settings.url) as url:
            yield url

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        from wellkept.connectors import pg_dump

        with self.errors("preparing the restore"):
            session = pg_dump.restore_options(self.conn)
        unlog = None
        if options.unlogged and not options.replace:
            def unlog() -> None:
                with self.errors("preparing the restore"):
                    pg_dump.unlog_tables(self.conn)
        pg_dump.restore(self.settings.url, source, fmt, options, self._children, session, unlog)

    def content_counts(self) -> dict[str, int]:
        with self.errors("counting rows"):
            from wellkept.connectors import pg_dump

            return pg_dump.counts(self.conn)

    def is_empty(self) -> bool:
        with self.errors("checking the database"):
            from wellkept.connectors import pg_dump

            return pg_dump.is_empty(self.conn)

    def smoke(self, query: str) -> Any:
        with self.errors("smoke query"):
            row = self.conn.execute(query).fetchone()
        return smoke_answer(row)

    # --- reading (QueryReader), audit (RoleAuditable) ----------------------------------------

    @contextlib.contextmanager
    def read_query(self, query: str, batch_size: int) -> Iterator[RowStream]:
        """The user's query in a ``READ ONLY`` transaction (PostgreSQL refuses any write in
        it), through a server-side cursor fetching ``batch_size`` rows at a time. The
        target's statement_timeout and lock_timeout apply."""
        from wellkept.connectors import _rows

        with self.errors("query"):
            conn = self.conn
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                with conn.cursor(name="wellkept_read") as cur:
                    cur.itersize = batch_size
                    cur.execute(query)
                    yield _rows.stream(cur, batch_size)

    def role_audit(self) -> RoleAudit:
        from wellkept.connectors import pg_roles

        with self.errors("role audit"):
            return pg_roles.audit(self.conn)

    def transport(self) -> Transport:
        from wellkept.connectors import pg_roles

        return pg_roles.transport(self.settings.url)

    # --- advice ---------------------------------------------------------------------------------

    def advise(self) -> AdviceReport:
        with self.errors("advice"):
            from wellkept.connectors import pg_advice

            return pg_advice.advise(self)
