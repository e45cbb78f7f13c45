"""Retention cleanup: is wellkept's batched `cleanup` nearly as fast as one big DELETE, without
its long transaction, and faster than pt-archiver?

PostgreSQL. Builds (dropped and recreated, dropped again at the end unless --keep) a database
with one table `events (id bigint primary key, created_at timestamptz, n int, payload text)` of
--rows rows: odd ids are expired (31+ days old), even ids are fresh (under 22 days), so the
expired half is spread over every page. A btree index on created_at, VACUUM ANALYZE, CHECKPOINT;
autovacuum is off on the table so no method gets a vacuum the others do not. The table is rebuilt
the same way (same reference time, same rows) before each of:

- baseline: the concurrent writer alone for --baseline-seconds, nothing deleting;
- wellkept: `wellkept run <task> -o json` through the installed CLI (cleanup, retention 30d,
  default batch_size and target_batch_seconds), its peak RSS read from /proc and wait4();
- single DELETE: `DELETE FROM events WHERE created_at < X` in one transaction;
- ctid batches: `DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT --ctid-batch))`, one
  transaction per batch, until a batch deletes nothing.

During each one, a separate process with its own connection makes single-row UPDATEs of random
fresh rows as fast as it can and records each statement's latency. After each method the table
must hold exactly the fresh half.

MariaDB. The same data shape (--mysql-rows, built with the Sequence engine in about 5 s),
rebuilt before each of the baseline, wellkept (`mysql://` target, same task) and
`pt-archiver --purge --limit 1000 --commit-each --bulk-delete --no-check-charset` (Debian
package percona-toolkit, installed with apt-get when missing): both tools with the same writer,
then both again without it. The goal compares them without it, as the issue states it (the same
data); beside the writer, InnoDB's purge of the deleted rows competes with both tools for the
CPU the writer leaves, and that ratio is shown for information.

Every method runs --runs times, round by round; the table shows medians, except the longest
transaction and the peak RSS, which are the worst of all rounds. Prints the figures against the
goals (wellkept >= 0.7x the single DELETE's rows/s, longest transaction <= 1 s, writer p99 <= 2x
baseline, peak RSS < 150 MB; on MariaDB >= 1.5x pt-archiver's rows/s) and writes every round's
figures to bench/results/cleanup.json.

    .venv/bin/python bench/cleanup.py [--rows 2000000] [--mysql-rows 2000000] [--runs 3]
        [--baseline-seconds 10] [--ctid-batch 5000] [--pt-limit 1000]
        [--skip-postgres] [--skip-mysql] [--keep]
        [--host 127.0.0.1] [--port 5432] [--user postgres]
        [--mysql-host 127.0.0.1] [--mysql-port 3306] [--mysql-user root]
        [--db wellkept_bench_cleanup]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from _common import compile_wellkept, median_of, run_measured, shown, source_state, wellkept_version
from _peers import find_or_install

TABLE = "events"
RETENTION_DAYS = 30
GOAL_VS_DELETE = 0.7          # wellkept rows/s >= 0.7x the single DELETE's
GOAL_LONGEST_TXN = 1.0        # seconds
GOAL_P99_FACTOR = 2.0         # writer p99 during wellkept <= 2x baseline p99
GOAL_VS_PT_ARCHIVER = 1.5     # wellkept rows/s >= 1.5x pt-archiver's
GOAL_RSS_MB = 150.0
#: the MariaDB methods run again without the writer: the issue's throughput comparison
MY_ALONE = ("wellkept, no writer", "pt-archiver, no writer")
WK_TASKS = {"postgresql": "bench-cleanup-pg", "mysql": "bench-cleanup-mysql"}
LABELS = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}
# how rounds are summarized: medians, except the worst case where a goal is a ceiling
MEDIAN_KEYS = ("wall_seconds", "rows_per_second", "task_rows_per_second", "rows_deleted",
               "batches", "command_seconds", "run_seconds", "build_seconds", "wal_bytes")
MAX_KEYS = ("longest_txn_seconds", "peak_rss_mb")
WRITER_KEYS = ("updates_per_second", "p50_ms", "p99_ms", "p999_ms")

# odd ids: 31 days + id seconds old (expired); even ids: under 22 days old (fresh)
PG_BUILD = [
    f"""CREATE TABLE {TABLE} (id bigint NOT NULL, created_at timestamptz NOT NULL,
                           n int NOT NULL DEFAULT 0, payload text NOT NULL)
        WITH (autovacuum_enabled = off)""",
    f"""INSERT INTO {TABLE}
        SELECT g, CASE WHEN g %% 2 = 1 THEN %(ref)s - interval '31 days' - g * interval '1 second'
                       ELSE %(ref)s - (g %% 1900000) * interval '1 second' END,
               0, md5(g::text)
        FROM generate_series(1, %(rows)s) g""",
    f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)",
    f"CREATE INDEX {TABLE}_created_at_idx ON {TABLE} (created_at)",
]
MY_BUILD = [
    f"""CREATE TABLE {TABLE} (id BIGINT NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL,
        n INT NOT NULL DEFAULT 0, payload VARCHAR(64) NOT NULL) ENGINE=InnoDB""",
    f"""INSERT INTO {TABLE}
        SELECT seq, IF(seq %% 2 = 1, %(ref)s - INTERVAL 31 DAY - INTERVAL seq SECOND,
                       %(ref)s - INTERVAL (seq %% 1900000) SECOND), 0, md5(seq)
        FROM seq_1_to_{{rows}}""",
    f"ALTER TABLE {TABLE} ADD INDEX {TABLE}_created_at_idx (created_at)",
    f"ANALYZE TABLE {TABLE}",
]
WRITER_SQL = f"UPDATE {TABLE} SET n = n + 1 WHERE id = %s"
CTID_SQL = (f"DELETE FROM {TABLE} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {TABLE} "
            "WHERE created_at < %s LIMIT {limit}))")


# --- PostgreSQL: the table ---------------------------------------------------------------------


def pg_dsn(args: argparse.Namespace, dbname: str) -> str:
    return f"host={args.host} port={args.port} user={args.user} dbname={dbname}"


def pg_connect(args: argparse.Namespace, dbname: str | None = None) -> psycopg.Connection:
    return psycopg.connect(pg_dsn(args, dbname or args.db), autocommit=True)


def pg_recreate_database(args: argparse.Namespace, create: bool = True) -> None:
    with pg_connect(args, "postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{args.db}"')


def pg_build(args: argparse.Namespace, ref: datetime) -> float:
    """(Re)build the table from scratch, VACUUM ANALYZE, CHECKPOINT; returns the seconds."""
    t0 = time.perf_counter()
    with pg_connect(args) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        with conn.transaction():
            for statement in PG_BUILD:
                conn.execute(statement, {"ref": ref, "rows": args.rows} if "%(" in statement
                             else None)
        conn.execute(f"VACUUM (ANALYZE) {TABLE}")
        conn.execute("CHECKPOINT")
    return round(time.perf_counter() - t0, 2)


def pg_effect(args: argparse.Namespace, cutoff: datetime) -> dict[str, int]:
    """Rows left, expired rows left, fresh rows left; asserts exactly the fresh half remains."""
    with pg_connect(args) as conn:
        row = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE created_at < %s), "
                           f"count(*) FILTER (WHERE id %% 2 = 0) FROM {TABLE}",
                           (cutoff,)).fetchone()
    assert row is not None
    left = {"rows_left": row[0], "expired_left": row[1], "fresh_left": row[2]}
    fresh = args.rows // 2
    assert left == {"rows_left": fresh, "expired_left": 0, "fresh_left": fresh}, left
    return left


def pg_wal_lsn(args: argparse.Namespace) -> str:
    with pg_connect(args) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def pg_wal_bytes(args: argparse.Namespace, start: str) -> int:
    with pg_connect(args) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)",
                           (start,)).fetchone()
    assert row is not None
    return int(row[0])


# --- PostgreSQL: the concurrent writer -----------------------------------------------------------


def open_writer(engine: str, conninfo: dict[str, Any]) -> tuple[Any, Callable[[int], Any]]:
    """An autocommit connection and a function that updates one row by id."""
    if engine == "postgresql":
        pg = psycopg.connect(conninfo["dsn"], autocommit=True)
        return pg, lambda key: pg.execute(WRITER_SQL, (key,))
    my = pymysql.connect(**conninfo, autocommit=True)
    cur = my.cursor()
    return my, lambda key: cur.execute(WRITER_SQL, (key,))


def writer_main(engine: str, conninfo: dict[str, Any], rows: int, seed: int, ready: Any,
                stop: Any, out: Any) -> None:
    """In its own process: UPDATE random fresh (even-id) rows until told to stop, then send
    back the start time and latency of every statement, and how many failed."""
    rng = random.Random(seed)
    stamps, latencies = array("d"), array("d")
    failed = 0
    conn, update = open_writer(engine, conninfo)
    with conn:
        for _ in range(200):  # warm up: connection, prepared statement, caches
            update(2 * rng.randint(1, rows // 2))
        ready.set()
        while not stop.is_set():
            key = 2 * rng.randint(1, rows // 2)
            t0 = time.monotonic()
            try:
                update(key)
            except Exception:  # a lock wait timeout, say: count it, keep writing
                failed += 1
            stamps.append(t0)
            latencies.append(time.monotonic() - t0)
    out.send((stamps.tobytes(), latencies.tobytes(), failed))
    out.close()


class Writer:
    """The concurrent writer process; `stop()` returns the latencies inside a time window."""

    def __init__(self, args: argparse.Namespace, engine: str, seed: int) -> None:
        if engine == "postgresql":
            conninfo: dict[str, Any] = {"dsn": pg_dsn(args, args.db)}
        else:
            conninfo = {"host": args.mysql_host, "port": args.mysql_port,
                        "user": args.mysql_user, "database": args.db}
        ctx = mp.get_context("spawn")
        self.ready, self.halt = ctx.Event(), ctx.Event()
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=writer_main, daemon=True, args=(
            engine, conninfo, table_rows(args, engine), seed, self.ready, self.halt, send))

    def start(self) -> Writer:
        self.proc.start()
        if not self.ready.wait(60):
            sys.exit("the concurrent writer did not start")
        return self

    def stop(self, t0: float, t1: float) -> tuple[list[tuple[float, float]], int]:
        """(start, latency) of each statement begun between t0 and t1, and the failures."""
        self.halt.set()
        stamps_raw, latencies_raw, failed = self.recv.recv()
        self.proc.join(30)
        stamps, latencies = array("d"), array("d")
        stamps.frombytes(stamps_raw)
        latencies.frombytes(latencies_raw)
        return [(t, lat) for t, lat in zip(stamps, latencies, strict=True) if t0 <= t <= t1], failed


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def latency_summary(latencies: list[float], failed: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    ms = [1000 * x for x in ordered]
    return {"updates": len(ms), "failed": failed,
            "updates_per_second": round(len(ms) / seconds, 1),
            "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "p999_ms": round(percentile(ms, 99.9), 3), "max_ms": round(ms[-1], 3) if ms else None}


# --- PostgreSQL: the methods ---------------------------------------------------------------------


def pg_single_delete(args: argparse.Namespace, cutoff: datetime) -> dict[str, Any]:
    with pg_connect(args) as conn:
        t0 = time.perf_counter()
        with conn.transaction():
            deleted = conn.execute(f"DELETE FROM {TABLE} WHERE created_at < %s",
                                   (cutoff,)).rowcount
        took = time.perf_counter() - t0
    return {"reported_deleted": deleted, "longest_txn_seconds": round(took, 3),
            "batches": 1}


def pg_ctid_batches(args: argparse.Namespace, cutoff: datetime) -> dict[str, Any]:
    """Autocommit: each statement is its own transaction, committed before the next."""
    sql = CTID_SQL.format(limit=int(args.ctid_batch))
    deleted = batches = 0
    longest = 0.0
    with pg_connect(args) as conn:
        while True:
            t0 = time.perf_counter()
            n = conn.execute(sql, (cutoff,)).rowcount
            longest = max(longest, time.perf_counter() - t0)
            if n <= 0:
                break
            deleted += n
            batches += 1
    return {"reported_deleted": deleted, "longest_txn_seconds": round(longest, 3),
            "batches": batches}


def table_rows(args: argparse.Namespace, engine: str) -> int:
    return int(args.rows if engine == "postgresql" else args.mysql_rows)


def measure(args: argparse.Namespace, ref: datetime, engine: str, name: str,
            method: Callable[[], dict[str, Any]] | None, seed: int,
            with_writer: bool = True) -> dict[str, Any]:
    """Rebuild, start the writer (unless ``with_writer`` is false), run the method (or just
    wait: the baseline), stop the writer, check that exactly the fresh half is left."""
    label, rows = LABELS[engine], table_rows(args, engine)
    print(f"{label} {name}: rebuilding {rows:,} rows ...", flush=True)
    build_seconds = pg_build(args, ref) if engine == "postgresql" else my_build(args, ref)
    lsn = pg_wal_lsn(args) if engine == "postgresql" else None
    writer = Writer(args, engine, seed).start() if with_writer else None
    print(f"{label} {name}: running (built in {build_seconds}s) ...", flush=True)
    t0, wall_t0 = time.monotonic(), time.time()
    if method is None:
        time.sleep(args.baseline_seconds)
        outcome: dict[str, Any] = {}
    else:
        outcome = method()
    t1 = time.monotonic()
    stamped, failed = writer.stop(t0, t1) if writer else ([], 0)
    wall = t1 - t0
    row: dict[str, Any] = {"method": name, "build_seconds": build_seconds,
                           "wall_seconds": round(wall, 3), **outcome,
                           "writer": latency_summary([lat for _t, lat in stamped], failed, wall)
                           if writer else None}
    if writer and outcome.get("run_started_at") and outcome.get("run_seconds"):
        # wellkept: the writer during the run itself (from its history record), apart from
        # the process's start-up before it and its exit after it
        r0 = t0 + outcome["run_started_at"] - wall_t0
        r1 = r0 + outcome["run_seconds"]
        during = [lat for t, lat in stamped if r0 <= t <= r1]
        row["writer_during_run"] = latency_summary(during, 0, r1 - r0)
        row["writer_outside_run"] = latency_summary(
            [lat for t, lat in stamped if not r0 <= t <= r1], 0, wall - (r1 - r0))
    if lsn is not None:
        row["wal_bytes"] = pg_wal_bytes(args, lsn)
    if method is not None:
        cutoff = ref - timedelta(days=RETENTION_DAYS)
        row.update(pg_effect(args, cutoff) if engine == "postgresql" else my_effect(args, cutoff))
        row["rows_deleted"] = rows - row["rows_left"]
        row["rows_per_second"] = round(row["rows_deleted"] / wall, 1)
        if outcome.get("run_seconds"):  # wellkept: the run's own time, without process start
            row["task_rows_per_second"] = round(row["rows_deleted"] / outcome["run_seconds"], 1)
    return row


# --- wellkept through its CLI --------------------------------------------------------------------


def write_config(folder: Path, args: argparse.Namespace) -> Path:
    """One cleanup instance per engine, defaults for batch_size and target_batch_seconds."""
    task = {"kind": "cleanup", "table": TABLE, "date_column": "created_at",
            "retention": f"{RETENTION_DAYS}d"}
    config = {
        "state": f"sqlite:///{folder / 'state.db'}",
        "targets": {
            "pg": {"url": f"postgresql://{args.user}@{args.host}:{args.port}/{args.db}"},
            "my": {"url": f"mysql://{args.mysql_user}@{args.mysql_host}:{args.mysql_port}/"
                          f"{args.db}"},
        },
        "tasks": {WK_TASKS["postgresql"]: {**task, "target": "pg"},
                  WK_TASKS["mysql"]: {**task, "target": "my"}},
    }
    path = folder / "wellkept.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def run_wellkept(exe: str, config: Path, task: str) -> dict[str, Any]:
    """`wellkept run TASK -o json`, with its wall time and peak RSS."""
    done = run_measured([exe, "-c", str(config), "run", task, "-o", "json"])
    stdout, stderr = done.stdout, done.stderr
    try:
        result = json.loads(stdout)["results"][0]
    except (ValueError, KeyError, IndexError):
        result = {"status": "no JSON", "message": (stderr or stdout).strip()[-500:]}
    details = result.get("details") or {}
    metrics = result.get("metrics") or {}
    return {"command": done.command, "command_seconds": done.seconds,
            "exit_code": done.exit_code, "status": result.get("status"),
            "message": result.get("message"), "errors": result.get("errors", []),
            "run_seconds": result.get("duration_seconds"),
            "run_started_at": (datetime.fromisoformat(result["started_at"].replace("Z", "+00:00"))
                               .timestamp() if result.get("started_at") else None),
            "reported_deleted": metrics.get("rows_deleted"),
            "rows_matched": metrics.get("rows_matched"), "batches": metrics.get("batches"),
            "longest_txn_seconds": details.get("longest_batch_seconds"),
            "batch_sizes": details.get("batch_sizes"),
            "timings_seconds": details.get("timings_seconds"),
            "peak_rss_mb": done.peak_rss_mb, "peak_rss_mb_wait4": done.peak_rss_mb_wait4,
            "peak_rss_mb_vmhwm": done.peak_rss_mb_vmhwm,
            "stderr_tail": stderr.strip().splitlines()[-5:], "details": details}


# --- MariaDB -------------------------------------------------------------------------------------


def my_connect(args: argparse.Namespace, db: str | None = None) -> Any:
    return pymysql.connect(host=args.mysql_host, port=args.mysql_port, user=args.mysql_user,
                           database=db, autocommit=True)


def my_recreate_database(args: argparse.Namespace, create: bool = True) -> None:
    with my_connect(args) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{args.db}`")
        if create:
            cur.execute(f"CREATE DATABASE `{args.db}`")


def my_build(args: argparse.Namespace, ref: datetime) -> float:
    t0 = time.perf_counter()
    naive = ref.replace(tzinfo=None)
    with my_connect(args, args.db) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        for statement in MY_BUILD:
            sql = statement.replace("{rows}", str(int(args.mysql_rows)))
            if "%(ref)s" in sql:
                cur.execute(sql, {"ref": naive})
            else:
                cur.execute(sql)
                cur.fetchall()
    return round(time.perf_counter() - t0, 2)


def my_effect(args: argparse.Namespace, cutoff: datetime) -> dict[str, int]:
    with my_connect(args, args.db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*), coalesce(sum(created_at < %s), 0), "
                    f"coalesce(sum(id %% 2 = 0), 0) FROM {TABLE}", (cutoff.replace(tzinfo=None),))
        row = cur.fetchone()
    left = {"rows_left": int(row[0]), "expired_left": int(row[1]), "fresh_left": int(row[2])}
    fresh = args.mysql_rows // 2
    assert left == {"rows_left": fresh, "expired_left": 0, "fresh_left": fresh}, left
    return left


def find_pt_archiver() -> str:
    """pt-archiver; apt-get installs percona-toolkit when it is missing."""
    return find_or_install("percona-toolkit", "pt-archiver")


def pt_archiver_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().removeprefix("pt-archiver ")


def run_pt_archiver(exe: str, args: argparse.Namespace, cutoff: datetime) -> dict[str, Any]:
    where = f"created_at < '{cutoff.replace(tzinfo=None).isoformat(sep=' ')}'"
    source = f"h={args.mysql_host},P={args.mysql_port},u={args.mysql_user},D={args.db},t={TABLE}"
    cmd = [exe, "--source", source, "--where", where, "--purge", "--limit", str(args.pt_limit),
           "--commit-each", "--bulk-delete", "--no-check-charset"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    return {"command": shown(cmd), "command_seconds": round(wall, 3),
            "exit_code": proc.returncode, "status": "completed" if proc.returncode == 0
            else "failed", "errors": [proc.stderr.strip()[-500:]] if proc.returncode else []}


# --- the two benchmarks --------------------------------------------------------------------------


def run_rounds(args: argparse.Namespace, ref: datetime, engine: str,
               methods: list[tuple[str, Callable[[], dict[str, Any]] | None]],
               alone: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """--runs rounds of every method in turn (each on a rebuilt table; those named in
    ``alone`` without the writer), then one summary per method: medians, and the worst
    longest transaction and peak RSS of all rounds."""
    rounds: list[list[dict[str, Any]]] = []
    for n in range(args.runs):
        print(f"--- {LABELS[engine]} round {n + 1} of {args.runs}", flush=True)
        rounds.append([measure(args, ref, engine, name, method, 100 * n + seed,
                               with_writer=name not in alone)
                       for seed, (name, method) in enumerate(methods, 1)])
    return [summarize([r[i] for r in rounds]) for i in range(len(methods))]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    row: dict[str, Any] = {"method": first["method"], "runs": len(runs)}
    for key in MEDIAN_KEYS:
        if key in first:
            row[key] = median_of([r.get(key) for r in runs])
    for key in MAX_KEYS:
        if key in first:
            row[key] = max((r[key] for r in runs if r.get(key) is not None), default=None)
    writers = [r["writer"] for r in runs]
    row["writer"] = None
    if first["writer"] is not None:
        row["writer"] = {k: median_of([w[k] for w in writers]) for k in WRITER_KEYS}
        row["writer"]["max_ms"] = max(w["max_ms"] or 0 for w in writers)
        row["writer"]["failed"] = sum(w["failed"] for w in writers)
    for phase in ("writer_during_run", "writer_outside_run"):
        if phase in first:
            row[phase] = {k: median_of([r[phase][k] for r in runs]) for k in WRITER_KEYS}
    if "status" in first:
        row["statuses"] = [r["status"] for r in runs]
        row["errors"] = [e for r in runs for e in r.get("errors") or []]
    row["each_run"] = runs
    return row


def bench_postgres(args: argparse.Namespace, exe: str, config: Path, ref: datetime,
                   ) -> dict[str, Any]:
    cutoff = ref - timedelta(days=RETENTION_DAYS)
    pg_recreate_database(args)
    rows = run_rounds(args, ref, "postgresql", [
        ("baseline (writer alone)", None),
        ("wellkept cleanup", lambda: run_wellkept(exe, config, WK_TASKS["postgresql"])),
        ("single DELETE", lambda: pg_single_delete(args, cutoff)),
        (f"ctid batches of {args.ctid_batch}", lambda: pg_ctid_batches(args, cutoff)),
    ])
    with pg_connect(args) as conn:
        row = conn.execute("SELECT current_setting('server_version'), "
                           "current_setting('shared_buffers'), current_setting('autovacuum'), "
                           "current_setting('synchronous_commit'), "
                           "current_setting('max_wal_size')").fetchone()
    assert row is not None
    baseline, wk, single = rows[0], rows[1], rows[2]
    # the DELETE is timed as a statement on a connection, so wellkept is timed as its run (from
    # its history record: connect, count, batches, checkpoints), not its process start-up;
    # the whole command's ratio is reported beside it
    goals = {
        "throughput_vs_single_delete": goal(
            wk["task_rows_per_second"] / single["rows_per_second"], GOAL_VS_DELETE, higher=True),
        "command_throughput_vs_single_delete": goal(
            wk["rows_per_second"] / single["rows_per_second"], GOAL_VS_DELETE, higher=True,
            informational=True),
        "longest_txn_seconds": goal(wk["longest_txn_seconds"], GOAL_LONGEST_TXN, higher=False),
        "writer_p99_vs_baseline": goal(wk["writer"]["p99_ms"] / baseline["writer"]["p99_ms"],
                                       GOAL_P99_FACTOR, higher=False),
        "run_writer_p99_vs_baseline": goal(
            wk["writer_during_run"]["p99_ms"] / baseline["writer"]["p99_ms"], GOAL_P99_FACTOR,
            higher=False, informational=True),
        "peak_rss_mb": goal(wk["peak_rss_mb"], GOAL_RSS_MB, higher=False, strict=True),
    }
    return {"rows": args.rows, "expired": args.rows - args.rows // 2,
            "server": {"version": row[0], "shared_buffers": row[1], "autovacuum": row[2],
                       "synchronous_commit": row[3], "max_wal_size": row[4]},
            "methods": rows, "goals": goals}


def bench_mysql(args: argparse.Namespace, exe: str, config: Path, ref: datetime,
                ) -> dict[str, Any]:
    pt = find_pt_archiver()
    cutoff = ref - timedelta(days=RETENTION_DAYS)
    my_recreate_database(args)
    wellkept = lambda: run_wellkept(exe, config, WK_TASKS["mysql"])  # noqa: E731
    pt_archiver = lambda: run_pt_archiver(pt, args, cutoff)  # noqa: E731
    rows = run_rounds(args, ref, "mysql", [
        ("baseline (writer alone)", None),
        ("wellkept cleanup", wellkept),
        ("pt-archiver", pt_archiver),
        (MY_ALONE[0], wellkept),
        (MY_ALONE[1], pt_archiver),
    ], alone=MY_ALONE)
    with my_connect(args) as conn, conn.cursor() as cur:
        cur.execute("SELECT version(), @@innodb_buffer_pool_size, "
                    "@@innodb_flush_log_at_trx_commit, @@tx_isolation")
        server_version, pool, flush, isolation = cur.fetchone()
    # the goal compares the two tools on the same data, each alone; the same
    # comparison beside the writer is shown with it (InnoDB's purge of the deleted rows then
    # competes with both for the CPU the writer leaves)
    ratio = rows[3]["rows_per_second"] / rows[4]["rows_per_second"]
    loaded = rows[1]["rows_per_second"] / rows[2]["rows_per_second"]
    return {"rows": args.mysql_rows, "expired": args.mysql_rows - args.mysql_rows // 2,
            "server": {"version": server_version, "innodb_buffer_pool_size": int(pool),
                       "innodb_flush_log_at_trx_commit": int(flush), "isolation": isolation},
            "pt_archiver": pt_archiver_version(pt), "methods": rows,
            "goals": {"throughput_vs_pt_archiver": goal(ratio, GOAL_VS_PT_ARCHIVER,
                                                        higher=True),
                      "loaded_throughput_vs_pt_archiver": goal(
                          loaded, GOAL_VS_PT_ARCHIVER, higher=True, informational=True)}}


# --- reporting -----------------------------------------------------------------------------------


def goal(value: float, target: float, higher: bool, strict: bool = False,
         informational: bool = False) -> dict[str, Any]:
    """met when value >= target (higher) or value <= target (< when strict); an informational
    figure is shown against the target but is not itself a goal."""
    met = value >= target if higher else (value < target if strict else value <= target)
    out = verdict(value, target, met)
    if informational:
        out["informational"] = True
    return out


def verdict(value: float, target: float, met: bool) -> dict[str, Any]:
    return {"value": round(value, 3), "target": target, "met": met,
            "by_percent": round(100 * (value - target) / target, 1)}


def fmt(value: Any, spec: str = ",.0f", unit: str = "") -> str:
    return "-" if value is None else format(value, spec) + unit


def print_methods(rows: list[dict[str, Any]], peer: dict[str, Any], peer_name: str,
                  peer_alone: dict[str, Any] | None = None) -> None:
    """One line per method (medians of the rounds; longest: the worst round); the first row is
    the writer's baseline. A method run without the writer is compared with ``peer_alone``.
    Then each wellkept run."""
    base = rows[0]["writer"]
    print(f"{'method':<24} {'deleted':>9} {'wall':>8} {'rows/s':>9} {peer_name:>7} "
          f"{'longest':>8} {'batches':>7} {'w p50':>8} {'w p99':>8} {'p99 x':>6} "
          f"{'w max':>9} {'w upd/s':>8}")
    for r in rows:
        w = r["writer"]
        against = peer if w is not None or peer_alone is None else peer_alone
        ratio = r["rows_per_second"] / against["rows_per_second"] if "rows_per_second" in r \
            else None
        writer = "   (no writer)" if w is None else (
            f"{w['p50_ms']:6.2f}ms {w['p99_ms']:6.2f}ms {w['p99_ms'] / base['p99_ms']:6.2f} "
            f"{w['max_ms']:7.1f}ms {w['updates_per_second']:8,.0f}")
        print(f"{r['method']:<24} {fmt(r.get('rows_deleted')):>9} {r['wall_seconds']:7.2f}s "
              f"{fmt(r.get('rows_per_second')):>9} {fmt(ratio, '.2f'):>7} "
              f"{fmt(r.get('longest_txn_seconds'), '.3f', 's'):>8} {fmt(r.get('batches')):>7} "
              f"{writer}")
    for phase, label in (("writer_during_run", "during the run"),
                         ("writer_outside_run", "start-up and exit")):
        if phase in rows[1]:
            w = rows[1][phase]
            print(f"  writer {label:<18}: p50 {w['p50_ms']:.2f}ms, p99 {w['p99_ms']:.2f}ms "
                  f"({w['p99_ms'] / base['p99_ms']:.2f}x alone), {w['updates_per_second']:,.0f}"
                  " updates/s")
    runs = [(r["writer"] is None, wk) for r in rows if r["method"].startswith("wellkept")
            for wk in r["each_run"]]
    for n, (alone, wk) in enumerate(runs, 1):
        print(f"  wellkept run {n}{' (no writer)' if alone else ''}: {wk['status']}, "
              f"{wk['command_seconds']}s "
              f"(run {wk['run_seconds']}s), {fmt(wk['batches'])} batches, longest "
              f"{wk['longest_txn_seconds']}s, sizes {wk['batch_sizes']}, "
              f"peak RSS {wk['peak_rss_mb']} MB")
        if wk["status"] != "completed" or wk["errors"]:
            print(f"    {wk['message']} {wk['errors']}")


def print_postgres(pg: dict[str, Any]) -> None:
    print(f"\nPostgreSQL {pg['server']['version']}: {pg['rows']:,} rows, {pg['expired']:,} "
          "expired; writer = single-row UPDATEs of random fresh rows")
    print_methods(pg["methods"], pg["methods"][2], "vs DEL")


def print_mysql(my: dict[str, Any]) -> None:
    print(f"\nMariaDB {my['server']['version']}: {my['rows']:,} rows, {my['expired']:,} expired; "
          f"pt-archiver {my['pt_archiver']}; the same writer, then none")
    print_methods(my["methods"], my["methods"][2], "vs pt", my["methods"][4])


GOAL_TEXT = {
    "throughput_vs_single_delete": "PG: wellkept run rows/s >= {t}x single DELETE",
    "command_throughput_vs_single_delete": "PG: (whole command, start-up included) vs {t}x",
    "longest_txn_seconds": "PG: wellkept longest transaction <= {t}s",
    "writer_p99_vs_baseline": "PG: writer p99 during wellkept <= {t}x baseline",
    "run_writer_p99_vs_baseline": "PG: (during the run only, no start-up) vs {t}x",
    "peak_rss_mb": "PG: wellkept peak RSS < {t} MB",
    "throughput_vs_pt_archiver": "MariaDB: wellkept rows/s >= {t}x pt-archiver",
    "loaded_throughput_vs_pt_archiver": "MariaDB: (both beside the writer) vs {t}x",
}


def print_goals(goals: dict[str, dict[str, Any]]) -> None:
    print("\ngoals")
    for key, g in goals.items():
        verdict = "met" if g["met"] else f"MISSED (by {abs(g['by_percent'])}%)"
        if g.get("informational"):
            verdict = "(for information)"
        print(f"  {GOAL_TEXT[key].format(t=g['target']):<48} {g['value']:>9}  {verdict}")


# --- main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="PostgreSQL table rows")
    parser.add_argument("--mysql-rows", type=int, default=2_000_000, help="MariaDB table rows")
    parser.add_argument("--baseline-seconds", type=float, default=10.0,
                        help="how long the writer runs alone for the baseline")
    parser.add_argument("--runs", type=int, default=3,
                        help="rounds of every method (medians; worst longest txn and RSS)")
    parser.add_argument("--ctid-batch", type=int, default=5000, help="rows per ctid batch")
    parser.add_argument("--pt-limit", type=int, default=1000, help="pt-archiver --limit")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--db", default="wellkept_bench_cleanup",
                        help="database created (and dropped) in both servers")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args()
    if args.rows < 4 or args.mysql_rows < 4:
        parser.error("--rows and --mysql-rows must be at least 4")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    compile_wellkept()
    exe = shutil.which("wellkept", path=str(Path(sys.executable).parent)) or "wellkept"
    # one reference time for every rebuild, so each method gets the same rows
    ref = datetime.now(UTC).replace(microsecond=0)
    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(), "reference_time": ref.isoformat(),
        "retention_days": RETENTION_DAYS, "source": source_state(),
        "machine": {"python": platform.python_version(), "wellkept": wellkept_version(exe),
                    "psycopg": version("psycopg"), "pymysql": version("PyMySQL"),
                    "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()},
    }
    goals: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="wellkept-bench-") as folder:
        config = write_config(Path(folder), args)
        # a new state store runs its migrations on first use, once in its life; no round
        # should pay for them
        run_measured([exe, "-c", str(config), "check"])
        if not args.skip_postgres:
            try:
                report["postgresql"] = bench_postgres(args, exe, config, ref)
            finally:
                if not args.keep:
                    pg_recreate_database(args, create=False)
            print_postgres(report["postgresql"])
            goals.update(report["postgresql"]["goals"])
        if not args.skip_mysql:
            try:
                report["mysql"] = bench_mysql(args, exe, config, ref)
            finally:
                if not args.keep:
                    my_recreate_database(args, create=False)
            print_mysql(report["mysql"])
            goals.update(report["mysql"]["goals"])
    print_goals(goals)
    report["goals"] = goals
    report["machine"]["load_average_at_end"] = os.getloadavg()
    out = Path(__file__).parent / "results" / "cleanup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
