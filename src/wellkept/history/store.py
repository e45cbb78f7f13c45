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
    """Runs, checkpoints and schedule state. Cheap to create; connects on first use."""

    def __init__(self, url: str) -> None:
        self.url = engine_url(url)
        self._engine: sa.Engine | None = None
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
        try:
            return sa.create_engine(self.url, pool_pre_ping=True, pool_size=2,
                                    connect_args={"connect_timeout": 10,
                                                  "application_name": "wellkept-state"})
        except ModuleNotFoundError:
            from wellkept.errors import MissingDependency

            raise MissingDependency("psycopg", "postgres", "A PostgreSQL state store") from None

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
        with self._engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def lock(self, name: str, wait: float, holder: dict[str, Any],
             cancelled: locks.Cancelled = locks._never
             ) -> contextlib.AbstractContextManager[None]:
        """A named lock shared by every process using this store (see history.locks)."""
        if self.is_sqlite:
            path = self.sqlite_path
            assert path is not None
            return locks.file_lock(path.parent / "locks", name, wait, holder, cancelled)
        if self._engine is None:
            self._engine = self._create_engine()
        return locks.advisory_lock(self._engine, name, wait, holder, cancelled)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._migrated = False

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, record: RunRecord, params: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(
                **_row(record), params=params, heartbeat_at=record.started_at))

    def finish_run(self, record: RunRecord) -> None:
        values = _row(record)
        values.pop("run_id")
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == record.run_id).values(**values))

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return _record(row) if row else None

    def list_runs(self, *, limit: int = 20, task: str | None = None,
                  status: str | None = None, since: datetime | None = None) -> list[RunRecord]:
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if task:
            query = query.where(runs.c.task == task)
        if status:
            query = query.where(runs.c.status == status)
        if since:
            query = query.where(runs.c.started_at >= since)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def set_progress(self, run_id: str, attempt: int, percent: float | None, step: str,
                     message: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id, runs.c.attempt == attempt)
                .values(progress_percent=percent, progress_step=step, progress_message=message,
                        heartbeat_at=datetime.now(UTC)))
        return result.rowcount == 1

    def add_checkpoint(self, run_id: str, attempt: int, name: str, percent: float,
                       data: dict[str, Any]) -> bool:
        """Write a checkpoint unless a newer attempt owns the run (the fencing token).

        The fence is checked inside the write itself (one UPDATE, then an INSERT only if it
        matched), so no read lock is ever upgraded to a write lock."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            fenced = conn.execute(runs.update().where(
                runs.c.run_id == run_id, runs.c.attempt == attempt).values(
                progress_percent=percent, progress_step=name, heartbeat_at=now))
            if fenced.rowcount != 1:
                return False
            conn.execute(checkpoints.insert().values(
                run_id=run_id, attempt=attempt, name=name, percent=percent, data=data,
                created_at=now))
        return True

    def resume_point(self, task: str, target: str, identity: dict[str, Any],
                     before: str) -> dict[str, Any] | None:
        """The last checkpoint of the previous run of this task on this target, if that run
        did not complete and its parameters agree on ``identity`` (a changed rule is a
        different job).

        Only called under the target lock, so a ``running`` row found here belongs to a
        process that died (kill -9, a lost machine): its work is resumed, not repeated."""
        with self.engine.connect() as conn:
            prev = conn.execute(
                sa.select(runs.c.run_id, runs.c.status, runs.c.params, runs.c.dry_run)
                .where(runs.c.task == task, runs.c.target == target,
                       runs.c.run_id != before, runs.c.dry_run.is_(False))
                .order_by(runs.c.started_at.desc()).limit(1)).mappings().first()
        if prev is None or prev["status"] == "completed":
            return None
        previous = prev["params"] or {}
        if {k: previous.get(k) for k in identity} != identity:
            return None
        point = self.latest_checkpoint(prev["run_id"])
        if point is None:
            return None
        return {"run_id": prev["run_id"], "status": prev["status"], "name": point["name"],
                "percent": point["percent"], "data": point["data"]}

    def latest_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoints).where(checkpoints.c.run_id == run_id)
                               .order_by(checkpoints.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None


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
    }


def _record(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], task=row["task"], kind=row["kind"], target=row["target"],
        status=RunStatus(row["status"]), dry_run=bool(row["dry_run"]),
        trigger=Trigger(row["trigger"]), started_at=row["started_at"],
        finished_at=row["finished_at"], duration_seconds=row["duration_seconds"],
        message=row["message"] or "", metrics=row["metrics"] or {},
        details=row["details"] or {}, errors=row["errors"] or [], host=row["host"] or "",
        pid=row["pid"] or 0, attempt=row["attempt"] or 1, schedule=row["schedule"])


def open_store(url: str) -> HistoryStore:
    if not url:
        raise ConfigError("state: no state store configured")
    return HistoryStore(url)
