"""The history store: SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (shared).

Migrations are applied automatically on first use, under a lock so that two processes starting
at once do not race. Every run is written before its work starts and completed after it ends.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wellkept.errors import ConfigError, StoreError
from wellkept.history import locks
from wellkept.history.schema import HEAD_REVISION, checkpoints, runs
from wellkept.liveness import host_id
from wellkept.records import RunRecord
from wellkept.redact import redact
from wellkept.types import RunStatus, Trigger


def engine_url(url: str) -> str:
    """Pin the PostgreSQL driver to psycopg 3, whatever the user wrote."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class HistoryStore:
    """Runs and checkpoints; the coordinator's and recovery's tables are reached through the
    modules beside this one (schedules, coordination, recovery_log, figures, retention).
    Cheap to create; connects on first use."""

    def __init__(self, url: str) -> None:
        self.url = engine_url(url)
        self._engine: sa.Engine | None = None
        self._lock_engine: sa.Engine | None = None
        self._migrated = False
        # threads of one process (timeouts, the API) share a store: set it up once
        self._setup = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.split(":///", 1)[1]) if self.is_sqlite else None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None or not self._migrated:
            with self._setup:
                if self._engine is None:
                    self._engine = self._create_engine()
                if not self._migrated:
                    self._migrate()
        assert self._engine is not None
        return self._engine

    def _create_engine(self) -> sa.Engine:
        if self.is_sqlite:
            path = self.sqlite_path
            assert path is not None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the state folder {path.parent}: "
                                 f"{exc.strerror}") from None
            if not path.exists():
                # run history is the operator's business: owner-only, like backups (SQLite
                # gives the -wal and -shm files the same mode)
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            _enable_wal(path)
            engine = sa.create_engine(self.url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                # busy_timeout makes concurrent wellkept processes wait for each other
                # instead of failing (WAL, set once per file, lets readers go on meanwhile)
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            return engine
        return self._create_pg_engine(pool_pre_ping=True, pool_size=2)

    def _create_pg_engine(self, **pooling: Any) -> sa.Engine:
        try:
            return sa.create_engine(self.url, **pooling,
                                    connect_args={"connect_timeout": 10,
                                                  "application_name": "wellkept-state",
                                                  **locks.CLIENT_KEEPALIVES})
        except ModuleNotFoundError:
            from wellkept.errors import MissingDependency

            raise MissingDependency("psycopg", "postgres", "A PostgreSQL state store") from None

    def prepare(self, *, in_child: bool = False) -> None:
        """Apply pending migrations now. ``in_child`` runs them in a short-lived child process,
        so that a long-running process (the coordinator) never loads Alembic, which would stay
        in its memory (about 10 MB) for nothing. The URL goes through the environment, never
        the command line, where other users could read its password."""
        if not in_child:
            self.engine  # noqa: B018 - connecting migrates
            return
        if self._engine is None:
            self._engine = self._create_engine()
        try:
            current = self._current_revision()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the state store {redact(self.url)}: "
                             f"{redact(str(exc.orig))}") from None
        if current != HEAD_REVISION:
            import subprocess
            import sys

            code = ("import os; from wellkept.history.store import HistoryStore; "
                    "HistoryStore(os.environ['WELLKEPT_MIGRATE_STATE']).engine")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env={**os.environ, "WELLKEPT_MIGRATE_STATE": self.url},
                                  check=False)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise StoreError(f"migrating the state store {redact(self.url)} failed: "
                                 f"{redact(last)}")
        self._migrated = True

    def _migrate(self) -> None:
        assert self._engine is not None
        try:
            if self._current_revision() == HEAD_REVISION:
                self._migrated = True
                return
            with self.lock("wellkept:migrations", wait=120, holder={"pid": os.getpid()}):
                if self._current_revision() != HEAD_REVISION:
                    self._upgrade()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the state store {redact(self.url)}: "
                             f"{redact(str(exc.orig))}") from None
        self._migrated = True

    def _current_revision(self) -> str | None:
        assert self._engine is not None
        with self._engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        assert self._engine is not None
        cfg = Config()
        cfg.set_main_option("script_location", "wellkept.history:migrations")
        with self._engine.connect() as conn:
            raw = conn.connection.dbapi_connection if self.is_sqlite else None
            if raw is not None:
                # Python's sqlite3 opens a transaction only before DML, so each CREATE and
                # ALTER would commit on its own, and a process killed mid-migration would leave
                # tables without their alembic_version: every later open then fails on "table
                # already exists". One explicit transaction makes the upgrade all or nothing.
                raw.isolation_level = None
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if raw is not None:
                    raw.isolation_level = ""  # back to the default

    def lock(self, name: str, wait: float, holder: dict[str, Any],
             cancelled: locks.Cancelled = locks._never, on_lost: locks.Lost | None = None
             ) -> contextlib.AbstractContextManager[None]:
        """A named lock shared by every process using this store (see history.locks).
        ``on_lost`` is called (from another thread) if the lock is lost while held; only
        a PostgreSQL store's lock can be."""
        if self.is_sqlite:
            path = self.sqlite_path
            assert path is not None
            return locks.file_lock(path.parent / "locks", name, wait, holder, cancelled)
        if self._lock_engine is None:
            # a session of its own per lock, held for a whole run: unpooled, so that many runs
            # at once never exhaust the pool the store's short queries share
            self._lock_engine = self._create_pg_engine(poolclass=sa.pool.NullPool)
        return locks.advisory_lock(self._lock_engine, name, wait, holder, cancelled, on_lost)

    def close(self) -> None:
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._migrated = False

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, record: RunRecord, params: dict[str, Any], *,
                  lease_until: datetime | None = None, deadline_at: datetime | None = None,
                  priority: int = 0) -> None:
        """Insert the run's row (status running) before its work starts, holding a lease."""
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(
                **_row(record), params=params, heartbeat_at=record.started_at,
                lease_until=lease_until, deadline_at=deadline_at, priority=priority,
                host_id=host_id()))

    def finish_run(self, record: RunRecord) -> bool:
        """Complete the row, unless the run stopped being this attempt's (it was found
        orphaned and taken over meanwhile): then nothing is written and False is returned."""
        values = _row(record)
        values.pop("run_id")
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().where(
                runs.c.run_id == record.run_id, runs.c.attempt == record.attempt,
                runs.c.status == str(RunStatus.RUNNING)).values(**values, lease_until=None))
        return done.rowcount == 1

    def renew_lease(self, run_id: str, attempt: int, until: datetime) -> bool:
        """Extend a running run's lease; False when the run is no longer this attempt's."""
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().where(
                runs.c.run_id == run_id, runs.c.attempt == attempt,
                runs.c.status == str(RunStatus.RUNNING)).values(
                lease_until=until, heartbeat_at=datetime.now(UTC)))
        return done.rowcount == 1

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return _record(row) if row else None

    def list_runs(self, *, limit: int = 20, task: str | None = None,
                  status: str | None = None, since: datetime | None = None,
                  offset: int = 0, after: tuple[datetime, str] | None = None,
                  statuses: tuple[str, ...] = ()) -> list[RunRecord]:
        """Runs, newest first (ties by run id). Pages: ``after`` (the started_at and run id
        of the last run of the page before) starts right after it, as fast deep as on the
        first page; ``offset`` skips that many rows, which costs more the deeper it goes.
        ``statuses``: only runs in one of these."""
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if offset:
            query = query.offset(offset)
        if after is not None:
            at, run_id = after
            # the plain range first, so that the index on started_at bounds the scan (an OR
            # of the two cases alone made SQLite walk the index from the newest run)
            query = query.where(runs.c.started_at <= at, sa.or_(runs.c.started_at < at,
                                                                runs.c.run_id > run_id))
        if task:
            query = query.where(runs.c.task == task)
        if status:
            query = query.where(runs.c.status == status)
        if statuses:
            query = query.where(runs.c.status.in_(statuses))
        if since:
            query = query.where(runs.c.started_at >= since)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def count_runs(self, *, since: datetime | None = None,
                   statuses: tuple[str, ...] = ()) -> int:
        """How many runs started since ``since`` (in one of ``statuses``)."""
        query = sa.select(sa.func.count()).select_from(runs)
        if statuses:
            query = query.where(runs.c.status.in_(statuses))
        if since:
            query = query.where(runs.c.started_at >= since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def set_progress(self, run_id: str, attempt: int, percent: float | None, step: str,
                     message: str) -> bool:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.update()
                .where(*_owned(run_id, attempt))
                .values(progress_percent=percent, progress_step=step, progress_message=message,
                        progress_at=now))
        return result.rowcount == 1

    def add_checkpoint(self, run_id: str, attempt: int, name: str, percent: float,
                       data: dict[str, Any]) -> bool:
        """Write a checkpoint unless this attempt no longer owns the run (the fencing token:
        a newer attempt, or the run was found orphaned).

        The fence is checked inside the write itself (one UPDATE, then an INSERT only if it
        matched), so no read lock is ever upgraded to a write lock."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            fenced = conn.execute(runs.update().where(*_owned(run_id, attempt)).values(
                progress_percent=percent, progress_step=name, progress_at=now))
            if fenced.rowcount != 1:
                return False
            conn.execute(checkpoints.insert().values(
                run_id=run_id, attempt=attempt, name=name, percent=percent, data=data,
                created_at=now))
        return True

    def latest_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoints).where(checkpoints.c.run_id == run_id)
                               .order_by(checkpoints.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None


def newest(store: HistoryStore, table: sa.Table, order: Any, *, limit: int,
           where: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of ``table`` as dicts, newest (by ``order``) first, at most ``limit``, meeting
    every clause of ``where`` (None stands for a filter not asked for)."""
    query = sa.select(table).order_by(order.desc()).limit(limit)
    for clause in where:
        if clause is not None:
            query = query.where(clause)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _owned(run_id: str, attempt: int) -> tuple[Any, ...]:
    """The WHERE clause that fences a worker's writes: its run, its attempt, still running."""
    return (runs.c.run_id == run_id, runs.c.attempt == attempt,
            runs.c.status == str(RunStatus.RUNNING))


def _enable_wal(path: Path) -> None:
    """Switch the file to WAL once (it persists). Changing the journal mode needs a moment
    with no other connection in a transaction, so retry briefly instead of failing."""
    import sqlite3

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
            finally:
                conn.close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StoreError(f"cannot open the state store {path}: {exc}") from None
            time.sleep(0.05)


def _row(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id, "task": record.task, "kind": record.kind,
        "target": record.target, "status": str(record.status), "dry_run": record.dry_run,
        "trigger": str(record.trigger), "schedule": record.schedule,
        "started_at": record.started_at, "finished_at": record.finished_at,
        "duration_seconds": record.duration_seconds, "message": record.message,
        "metrics": record.metrics, "details": record.details, "errors": record.errors,
        "host": record.host, "pid": record.pid, "attempt": record.attempt,
        "scheduled_for": record.scheduled_for, "recovery_of": record.recovery_of,
    }


def _record(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], task=row["task"], kind=row["kind"], target=row["target"],
        status=RunStatus(row["status"]), dry_run=bool(row["dry_run"]),
        trigger=Trigger(row["trigger"]), started_at=row["started_at"],
        finished_at=row["finished_at"], duration_seconds=row["duration_seconds"],
        message=row["message"] or "", metrics=row["metrics"] or {},
        details=row["details"] or {}, errors=row["errors"] or [], host=row["host"] or "",
        pid=row["pid"] or 0, attempt=row["attempt"] or 1, schedule=row["schedule"],
        scheduled_for=row["scheduled_for"], recovery_of=row["recovery_of"])


def open_store(url: str) -> HistoryStore:
    if not url:
        raise ConfigError("state: no state store configured")
    return HistoryStore(url)
