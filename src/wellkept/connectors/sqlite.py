"""SQLite: VACUUM, ANALYZE/optimize, integrity checks, stats, batched purges, online backups.

The connection runs in autocommit (``isolation_level=None``) so VACUUM is never inside a
transaction, and every write batch opens its own ``BEGIN IMMEDIATE``. ``busy_timeout`` is the
target's ``lock_timeout``: a database busy with another writer makes us wait that long, then the
run ends cleanly with the reason.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from wellkept.backups.artifact import copy_stream
from wellkept.connector import (
    Connector,
    DumpInfo,
    DumpOptions,
    IntegrityReport,
    Ping,
    PurgeBatch,
    PurgeEstimate,
    PurgeRule,
    RowSink,
    RowStream,
    StatsReport,
    render_conditions,
    smoke_answer,
)
from wellkept.connectors import _fileurl
from wellkept.connectors.sqlite_catalog import Catalog, quote
from wellkept.errors import ConnectionFailed, TaskFailed, Unavailable
from wellkept.records import Action, Metrics

BACKUP_STEP_PAGES = 4096


class SQLiteConnector(Connector):
    """SQLite database files (``sqlite:///relative/path.db`` or ``sqlite:////absolute.db``)."""

    name = "sqlite"
    summary = "SQLite database files, through Python's sqlite3"

    def __init__(self, target_name: str, settings: Any) -> None:
        super().__init__(target_name, settings)
        self._conn: sqlite3.Connection | None = None

    # --- connection -----------------------------------------------------------------------------

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        return _fileurl.resolve(url, base_dir, special=(":memory:",))

    @classmethod
    def create_database(cls, url: str, settings: Any) -> None:
        """The restore makes the file; it must not exist yet."""
        _fileurl.refuse_existing(url)

    @classmethod
    def drop_created_database(cls, url: str, settings: Any) -> None:
        _fileurl.remove_created(url, ("-journal", "-wal", "-shm"))

    @property
    def path(self) -> Path:
        return _fileurl.path_of(self.settings.url)

    def identity(self) -> str:
        return f"sqlite:{os.path.realpath(self.path)}"

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.exists():
                raise ConnectionFailed(f"no SQLite database file at {self.path}")
            busy_ms = int(self.settings.lock_timeout.total_seconds() * 1000)
            with self._errors():
                # check_same_thread=False: the timeout middleware interrupts from another thread
                conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True,
                                       isolation_level=None, check_same_thread=False,
                                       timeout=busy_ms / 1000)
                conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            self._conn = conn
        return self._conn

    def ping(self) -> Ping:
        t0 = time.perf_counter()
        with self._errors():
            version = self.conn.execute("SELECT sqlite_version()").fetchone()[0]
            self.conn.execute("PRAGMA schema_version").fetchone()  # reads the file header
        return Ping(latency_ms=(time.perf_counter() - t0) * 1000, version=f"SQLite {version}",
                    details={"path": str(self.path)})

    @contextmanager
    def read_query(self, query: str, batch_size: int) -> Iterator[RowStream]:
        """The user's query on a connection of its own opened read-only (``mode=ro``, and
        ``PRAGMA query_only``): SQLite refuses any write through it. Rows are stepped
        ``batch_size`` at a time."""
        from wellkept.connectors import _rows

        if not self.path.exists():
            raise ConnectionFailed(f"no SQLite database file at {self.path}")
        busy_ms = int(self.settings.lock_timeout.total_seconds() * 1000)
        with self._errors():
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                   check_same_thread=False, timeout=busy_ms / 1000)
        try:
            with self._errors():
                conn.execute("PRAGMA query_only = 1")
                cur = conn.execute(query)
                yield _rows.stream(cur, batch_size)
        finally:
            conn.close()

    def interrupt(self) -> None:
        if self._conn is not None:
            self._conn.interrupt()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Map sqlite3's errors onto wellkept's: busy is Unavailable, corruption a failure."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                waited = self.settings.lock_timeout.total_seconds()
                raise Unavailable(f"database {self.path.name} is busy with another writer "
                                  f"(waited {waited:g}s): {text}") from None
            if "unable to open" in text:
                raise ConnectionFailed(f"cannot open {self.path}: {text}") from None
            if "interrupted" in text:
                raise TaskFailed(f"statement interrupted: {text}") from None
            raise TaskFailed(f"SQLite error on {self.path.name}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise TaskFailed(f"{self.path.name} is damaged: {exc}") from None

    def _catalog(self) -> Catalog:
        return Catalog(self.conn)

    def _file_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())

    def _pages(self) -> tuple[int, int, int]:
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return page_size, page_count, free

    # --- vacuum and analyze (planned actions) ---------------------------------------------------

    def plan_vacuum(self, params: Any) -> list[Action]:
        with self._errors():
            page_size, page_count, free = self._pages()
        free_pct = 100.0 * free / page_count if page_count else 0.0
        evidence = {"free_pages": free, "page_count": page_count, "page_size": page_size,
                    "free_percent": round(free_pct, 2), "free_bytes": free * page_size}
        if not params.force and (free == 0 or free_pct < params.min_free_percent):
            return []
        reason = (f"{free_pct:.1f}% of the file is free pages ({free * page_size} bytes; "
                  f"threshold {params.min_free_percent:g}%)" if not params.force
                  else "forced")
        return [Action("main", "VACUUM", reason, evidence, meta={"op": "vacuum"})]

    def plan_analyze(self, params: Any) -> list[Action]:
        """Tables never analyzed, or whose row count moved past the threshold.

        Tables up to ``exact_rows`` are analyzed without a sampling limit, so the row count
        SQLite stores is exact and the next comparison is too. Larger tables are sampled
        (``analysis_limit``); their stored count is an estimate, trusted only to a factor of 2.
        """
        actions = []
        with self._errors():
            catalog = self._catalog()
            analyzed = catalog.analyzed_rows()
            for table in catalog.tables():
                rows = catalog.count(table)
                before = analyzed.get(table.lower())
                sampled = rows > params.exact_rows
                limit = params.analysis_limit if sampled else 0
                if before is None:
                    if rows == 0:
                        continue
                    reason = "never analyzed"
                else:
                    change = abs(rows - before) / max(before, 1) * 100
                    threshold = max(params.stale_percent, 100.0) if sampled \
                        else params.stale_percent
                    if change < threshold:
                        continue
                    reason = (f"row count changed {change:.0f}% since the last ANALYZE "
                              f"({before} -> {rows}; threshold {threshold:g}%)")
                actions.append(Action(table, f"ANALYZE {quote(table)}", reason,
                                      {"rows": rows, "rows_at_last_analyze": before,
                                       "analysis_limit": limit},
                                      meta={"op": "analyze", "limit": limit}))
        if actions:
            actions.append(Action("main", "PRAGMA optimize", "lets SQLite refresh any other "
                                  "statistics its planner has marked as stale",
                                  meta={"op": "optimize", "limit": params.analysis_limit}))
        return actions

    def apply(self, action: Action) -> Metrics:
        op = action.meta["op"]
        with self._errors():
            if op == "vacuum":
                return self._vacuum()
            self.conn.execute(f"PRAGMA analysis_limit = {int(action.meta['limit'])}")
            self.conn.execute(action.statement).fetchall()
            return {"tables_processed": 1} if op == "analyze" else {}

    def _vacuum(self) -> Metrics:
        size = self._file_bytes()
        for folder in {self.path.parent, Path(tempfile.gettempdir())}:
            free = shutil.disk_usage(folder).free
            if free < size:
                raise TaskFailed(f"VACUUM needs up to {size} bytes free in {folder} for its "
                                 f"copy, but only {free} are free")
        self.conn.execute("VACUUM")
        mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":  # the file shrinks only once the WAL is checkpointed
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return {"bytes_freed": max(size - self._file_bytes(), 0), "size_before": size,
                "size_after": self._file_bytes()}

    # --- integrity and stats --------------------------------------------------------------------

    def check_integrity(self, params: Any) -> IntegrityReport:
        pragma = "quick_check" if params.mode == "quick" else "integrity_check"
        checks = [f"PRAGMA {pragma}({int(params.max_errors)})"]
        problems: list[str] = []
        with self._errors():
            rows = [r[0] for r in self.conn.execute(checks[0]).fetchall()]
            if rows != ["ok"]:
                problems += _integrity_lines(rows)[:int(params.max_errors)]
            if params.foreign_keys:
                checks.append("PRAGMA foreign_key_check")
                for table, rowid, parent, _fk in self.conn.execute(checks[1]).fetchmany(
                        params.max_errors):
                    problems.append(f"foreign key: row {rowid} of {table} points to a missing "
                                    f"row of {parent}")
        return IntegrityReport(checks=checks, problems=problems)

    def collect_stats(self, params: Any) -> StatsReport:
        with self._errors():
            page_size, page_count, free = self._pages()
            catalog = self._catalog()
            tables, indexes = catalog.tables(), catalog.indexes()
            sizes = catalog.object_sizes()
            top_tables = sorted(tables, key=lambda t: sizes.get(t, 0), reverse=True)[:params.top]
            version = self.conn.execute("SELECT sqlite_version()").fetchone()[0]
            mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            details: dict[str, Any] = {
                "path": str(self.path), "sqlite_version": version, "journal_mode": mode,
                "page_size": page_size, "page_count": page_count, "free_pages": free,
                "top_tables": [{"name": t, "rows": catalog.count(t), "bytes": sizes.get(t)}
                               for t in top_tables],
                "top_indexes": [{"name": name, "table": table, "bytes": sizes.get(name)}
                                for name, table in sorted(
                                    indexes, key=lambda i: sizes.get(i[0], 0),
                                    reverse=True)[:params.top]],
                "sizes_exact": bool(sizes),
            }
        metrics: Metrics = {"size_bytes": self._file_bytes(), "free_bytes": free * page_size,
                            "free_percent": round(100.0 * free / page_count, 2)
                            if page_count else 0.0,
                            "tables": len(tables), "indexes": len(indexes)}
        return StatsReport(metrics=metrics, details=details)

    # --- purge ----------------------------------------------------------------------------------

    def purge_estimate(self, rule: PurgeRule, exact: bool = True) -> PurgeEstimate:
        # always exact: SQLite has no row estimates, and counting an index range is cheap
        with self._errors():
            plan = self._catalog().purge_plan(rule.table, rule.column)
            extra, extra_args = render_conditions(rule, plan.columns, quote, "?")
            cutoff = plan.time_format.render(rule.cutoff)
            sql = (f"SELECT count(*), min({plan.column}), max({plan.column}) FROM {plan.table} "
                   f"WHERE {plan.column} < ?{extra}")
            count, oldest, newest = self.conn.execute(sql, (cutoff, *extra_args)).fetchone()
        select_sql, delete_sql = plan.batch_sql(extra)
        batch = [select_sql, delete_sql]
        if rule.archive_table:
            batch.insert(1, plan.archive_sql(rule.archive_table, extra))
        return PurgeEstimate(rows=count, oldest=oldest, newest=newest, key=plan.key_label,
                             statements=[sql, "BEGIN IMMEDIATE", *batch, "COMMIT"],
                             cutoff=cutoff)

    def key_exists(self, rule: PurgeRule, key: Any) -> bool:
        with self._errors():
            plan = self._catalog().purge_plan(rule.table, rule.column)
            return self.conn.execute(f"SELECT 1 FROM {plan.table} WHERE {plan.key} = ?",
                                     (key,)).fetchone() is not None

    def purge_batch(self, rule: PurgeRule, after: Any, limit: int,
                    sink: RowSink | None = None) -> PurgeBatch:
        with self._errors():
            catalog = self._catalog()
            plan = catalog.purge_plan(rule.table, rule.column)
            extra, extra_args = render_conditions(rule, plan.columns, quote, "?")
            cutoff = plan.time_format.render(rule.cutoff)
            select_sql, delete_sql = plan.batch_sql(extra, first=after is None)
            if sink is not None:  # the whole rows, for the archive file
                select_sql = select_sql.replace(f"SELECT {plan.key} FROM",
                                                f"SELECT {plan.key}, * FROM", 1)
            t0 = time.perf_counter()
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                args = (cutoff, *extra_args, limit) if after is None else \
                    (after, cutoff, *extra_args, limit)
                cur = self.conn.execute(select_sql, args)
                fetched = cur.fetchall()
                keys = [r[0] for r in fetched]
                t1 = time.perf_counter()
                if not keys:
                    self.conn.execute("COMMIT")
                    return PurgeBatch(0, None, {"select": t1 - t0})
                span = (keys[0], keys[-1], cutoff, *extra_args)
                archived = 0
                if sink is not None:
                    names = [d[0] for d in cur.description][1:]
                    sink([dict(zip(names, r[1:], strict=True)) for r in fetched], keys[0],
                         keys[-1])
                    archived = len(fetched)
                elif rule.archive_table:
                    catalog.ensure_archive(plan, rule.archive_table)
                    archived = self.conn.execute(plan.archive_sql(rule.archive_table, extra),
                                                 span).rowcount
                t2 = time.perf_counter()
                deleted = self.conn.execute(delete_sql, span).rowcount
                if (rule.archive_table or sink is not None) and archived != deleted:
                    raise TaskFailed(f"the archive got {archived} rows but the delete removed "
                                     f"{deleted}; the batch was rolled back")
                t3 = time.perf_counter()
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            t4 = time.perf_counter()
        timings = {"select": t1 - t0, "delete": t3 - t2, "commit": t4 - t3}
        if rule.archive_table or sink is not None:
            timings["archive"] = t2 - t1
        return PurgeBatch(deleted, keys[-1], timings, archived=archived)

    # --- backup (Dumpable) ----------------------------------------------------------------------

    def dump_estimate(self) -> int:
        with self._errors():
            page_size, page_count, _ = self._pages()
        return int(page_size * page_count)

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo:
        """Copy the live database with the online backup API (writers may continue; the copy
        is one consistent snapshot), count its rows, and stream the copy."""
        copy = options.workdir / "copy.sqlite3"
        with self._errors():
            dest = sqlite3.connect(copy)
            try:
                self.conn.backup(dest, pages=BACKUP_STEP_PAGES)
                counts = _counts(dest)
            finally:
                dest.close()
        with copy.open("rb") as fh:
            copy_stream(fh, out)
        return DumpInfo(format="sqlite", suffix=".sqlite3", database=self.path.name,
                        server_version=sqlite3.sqlite_version,
                        tools={"sqlite": sqlite3.sqlite_version}, counts=counts)

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
        copy = _spill(source, options.workdir / "check.sqlite3")
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise TaskFailed(f"the SQLite copy fails quick_check: {check}")
            return [f"table {name}: {rows} rows" for name, rows in _counts(conn).items()]
        except sqlite3.DatabaseError as exc:
            raise TaskFailed(f"the backup is not a readable SQLite database: {exc}") from None
        finally:
            conn.close()

    @contextmanager
    def scratch(self) -> Iterator[str]:
        folder = Path(tempfile.mkdtemp(prefix="wellkept-scratch-"))
        try:
            sqlite3.connect(folder / "scratch.sqlite3").close()  # an empty database
            yield f"sqlite:///{folder / 'scratch.sqlite3'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None:
        """Load the copy through the backup API, page by page, into this database (which
        replaces its content in one step, as SQLite's own .restore does)."""
        copy = _spill(source, options.workdir / "restore.sqlite3")
        if not self.path.exists():  # restoring to a new file: create it (mode 0600)
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as exc:
                why = ("its folder does not exist" if not self.path.parent.is_dir()
                       else exc.strerror or str(exc))
                raise TaskFailed(f"cannot create {self.path}: {why}") from None
        src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            with self._errors():
                src.backup(self.conn, pages=BACKUP_STEP_PAGES)
        finally:
            src.close()

    def content_counts(self) -> dict[str, int]:
        with self._errors():
            return _counts(self.conn)

    def is_empty(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        with self._errors():
            found = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE "
                                      "'sqlite_%'").fetchone()[0]
        return int(found) == 0

    def smoke(self, query: str) -> Any:
        with self._errors():
            row = self.conn.execute(query).fetchone()
        return smoke_answer(row)


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {n: conn.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0] for n in names}


def _spill(source: BinaryIO, path: Path) -> Path:
    """SQLite opens files, not streams: write the dump out (mode 0600) first."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        copy_stream(source, fh)
    return path


__all__ = ["SQLiteConnector"]


def _integrity_lines(rows: list[Any]) -> list[str]:
    """The problems in ``PRAGMA integrity_check`` rows, one per line: SQLite reports all the
    problems of one b-tree as a single row of lines, under a ``*** in database main ***``
    heading."""
    return [line.strip() for row in rows for line in str(row).splitlines()
            if line.strip() and not (line.startswith("*** in database ")
                                     and line.rstrip().endswith("***"))]
