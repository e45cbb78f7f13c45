"""Catalog checks on 10,000 tables: are `stats`, `bloat` and `index_health` under 10 s, and how
close is the bloat estimate to check_postgres's and to the truth from pgstattuple?

Builds a dedicated database (dropped and recreated; dropped again at the end unless --keep)
with --tables tables `t_NNNNN (id bigint primary key, a int, b text, c timestamptz)`, each with
one or two secondary indexes and a few hundred rows, of which --large are bigger tables
`big_NN` (50k-200k rows) where a known share of the rows (0, 10, 30, 50 or 70%) was deleted
and then VACUUMed, so the space is free but not returned; then ANALYZE.

It times (median of --runs), through the installed CLI with `-o json`, `wellkept run` of
stats, bloat (top --bloat-top, min_bytes 0) and index_health, and the peer
`check_postgres --action=bloat` (installed with apt-get when missing). Then it measures the
large tables with pgstattuple (free_percent + dead_tuple_percent) as the truth, prints the
timings against the goal and the agreement / accuracy table, and writes
bench/results/postgres_catalog.json.

    .venv/bin/python bench/postgres_catalog.py [--tables 10000] [--large 20] [--runs 3] [--keep]
        [--host 127.0.0.1] [--port 5432] [--user postgres] [--db wellkept_bench_catalog]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from _common import compile_wellkept
from _peers import find_or_install

GOAL_SECONDS = 10.0
DELETE_SHARES = (0, 10, 30, 50, 70)
COLUMNS = "(id bigint PRIMARY KEY, a int, b text, c timestamptz)"
ROW = ("SELECT g, g % 97, left(repeat(md5(g::text), 3), 20 + g % 50), "
       "timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, {n}) g")
WK_TASKS = {"stats": "bench-stats", "bloat": "bench-bloat", "index_health": "bench-index-health"}
CP_TABLE = re.compile(r"\(db \S+\) table (?P<schema>[^.\s]+)\.(?P<table>\S+) rows:(?P<rows>\d+) "
                      r"pages:(?P<pages>\d+) shouldbe:(?P<otta>\d+) \((?P<ratio>[\d.]+)X\) "
                      r"wasted size:(?P<bytes>\d+)")


# --- building the database -----------------------------------------------------------------------


def connect(args: argparse.Namespace, dbname: str, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(host=args.host, port=args.port, user=args.user, dbname=dbname,
                           autocommit=autocommit)


def recreate_database(args: argparse.Namespace, create: bool = True) -> None:
    with connect(args, "postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{args.db}"')


def small_table_sql(i: int) -> str:
    """One small table: a few hundred rows (every 100th empty), one or two secondary indexes."""
    name = f"t_{i:05d}"
    rows = 0 if i % 100 == 0 else 100 + (i * 37) % 400
    sql = [f"CREATE TABLE {name} {COLUMNS};"]
    if rows:
        sql.append(f"INSERT INTO {name} {ROW.format(n=rows)};")
    sql.append(f"CREATE INDEX ON {name} (a);")
    if i % 2:
        sql.append(f"CREATE INDEX ON {name} (c);")
    return "\n".join(sql)


def build_small_tables(conn: psycopg.Connection, count: int, batch: int) -> None:
    """Create `count` small tables, `batch` tables per transaction (one round trip each)."""
    started = time.perf_counter()
    for lo in range(1, count + 1, batch):
        hi = min(lo + batch - 1, count)
        with conn.transaction():
            conn.execute("\n".join(small_table_sql(i) for i in range(lo, hi + 1)))
        rate = hi / (time.perf_counter() - started)
        print(f"\r  small tables: {hi:,}/{count:,} ({rate:,.0f}/s)", end="", flush=True)
    print()


def large_specs(count: int) -> list[dict[str, Any]]:
    """`count` tables from 50k to 200k rows, cycling through the delete shares."""
    step = 150_000 // max(1, count - 1)
    return [{"table": f"big_{k + 1:02d}", "rows": 50_000 + k * step,
             "deleted_percent": DELETE_SHARES[k % len(DELETE_SHARES)]} for k in range(count)]


def build_large_table(conn: psycopg.Connection, spec: dict[str, Any]) -> None:
    """Fill, index, delete a scattered share of the rows, VACUUM (space kept, not truncated)."""
    name, share = spec["table"], spec["deleted_percent"]
    with conn.transaction():
        conn.execute(f"CREATE TABLE {name} {COLUMNS}")
        conn.execute(f"INSERT INTO {name} {ROW.format(n=spec['rows'])}")
        conn.execute(f"CREATE INDEX ON {name} (a)")
        conn.execute(f"CREATE INDEX ON {name} (c)")
        # (id * 37) % 100 hits exactly `share`% of the ids, spread over every page
        conn.execute(f"DELETE FROM {name} WHERE (id * 37) % 100 < {share}")
    conn.execute(f"VACUUM {name}")


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Create the bench database; returns the large tables' specs and the build timings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    print(f"building {args.db}: {args.tables:,} tables, {args.large} of them large")
    recreate_database(args)
    specs = large_specs(args.large)
    with connect(args, args.db) as conn:
        build_small_tables(conn, args.tables - args.large, args.batch)
        timings["small_tables_seconds"] = time.perf_counter() - t0
        for n, spec in enumerate(specs, 1):
            build_large_table(conn, spec)
            print(f"\r  large tables: {n}/{len(specs)}", end="", flush=True)
        print()
        timings["large_tables_seconds"] = time.perf_counter() - t0 - sum(timings.values())
        t1 = time.perf_counter()
        conn.execute("ANALYZE")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        timings["analyze_seconds"] = time.perf_counter() - t1
    timings["total_seconds"] = time.perf_counter() - t0
    print(f"  built in {timings['total_seconds']:.1f}s (ANALYZE {timings['analyze_seconds']:.1f}s)")
    return {"large": specs, "timings": {k: round(v, 2) for k, v in timings.items()}}


# --- timing wellkept and check_postgres -----------------------------------------------------------


def write_config(folder: Path, args: argparse.Namespace, bloat_top: int) -> Path:
    """A wellkept config (JSON is YAML) with one instance per check, on the bench database."""
    url = f"postgresql://{args.user}@{args.host}:{args.port}/{args.db}"
    config = {
        "state": "sqlite:///state.db",
        "targets": {"bench": {"url": url}},
        "tasks": {
            WK_TASKS["stats"]: {"kind": "stats", "target": "bench"},
            WK_TASKS["bloat"]: {"kind": "bloat", "target": "bench", "top": bloat_top,
                                "min_bytes": 0},
            WK_TASKS["index_health"]: {"kind": "index_health", "target": "bench"},
        },
    }
    path = folder / "wellkept.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None,
          ) -> tuple[list[float], subprocess.CompletedProcess[str]]:
    """Wall times of `runs` runs, and the last run's process."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        samples.append(round(time.perf_counter() - t0, 3))
    return samples, proc


def run_wellkept(exe: str, config: Path, check: str, runs: int) -> dict[str, Any]:
    samples, proc = timed([exe, "-c", str(config), "run", WK_TASKS[check], "-o", "json"], runs)
    try:
        result = json.loads(proc.stdout)["results"][0]
    except (ValueError, KeyError, IndexError):
        result = {"status": "no JSON", "message": (proc.stderr or proc.stdout).strip()[-500:]}
    return {"check": check, "seconds": statistics.median(samples), "samples": samples,
            "exit_code": proc.returncode,
            "status": result.get("status"), "message": result.get("message"),
            "run_seconds": result.get("duration_seconds"), "errors": result.get("errors", []),
            "result": result}


def find_check_postgres() -> str:
    """The check_postgres executable; apt-get installs the Debian package when it is missing."""
    return find_or_install("check-postgres", "check_postgres", "check_postgres.pl")


def check_postgres_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().removeprefix("check_postgres version ")


def run_check_postgres(exe: str, args: argparse.Namespace, runs: int) -> dict[str, Any]:
    """`--action=bloat`, every relation a warning so each one is listed with its figures."""
    cmd = [exe, "--action=bloat", f"--dbhost={args.host}", f"--dbport={args.port}",
           f"--dbuser={args.user}", f"--dbname={args.db}", "--warning=1 b",
           "--critical=10 GB", f"--perflimit={args.perflimit}", f"--timeout={args.cp_timeout}"]
    samples, proc = timed(cmd, runs, env={**os.environ, "LC_ALL": "C", "LANG": "C"})
    tables = {m["table"]: {"schema": m["schema"], "rows": int(m["rows"]),
                           "pages": int(m["pages"]), "expected_pages": int(m["otta"]),
                           "ratio": float(m["ratio"]), "wasted_bytes": int(m["bytes"])}
              for m in CP_TABLE.finditer(proc.stdout)}
    status = proc.stdout.split(":", 1)[0].strip() or proc.stderr.strip()[:200]
    rows = max(len(tables), proc.stdout.count(") index "))  # every table here has an index
    return {"check": "check_postgres bloat", "seconds": statistics.median(samples),
            "samples": samples, "exit_code": proc.returncode, "status": status,
            "command": " ".join(cmd),
            "tables_listed": len(tables), "rows_listed": rows,
            "complete": rows < args.perflimit, "tables": tables}


# --- the truth and the comparison ---------------------------------------------------------------


def pgstattuple_truth(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, Any]]:
    """free_percent + dead_tuple_percent of each large table, by a full pgstattuple scan."""
    sql = ("SELECT table_len, free_space, free_percent, dead_tuple_len, dead_tuple_percent "
           "FROM pgstattuple(%s::regclass)")
    out = {}
    with connect(args, args.db) as conn:
        for name in names:
            row = conn.execute(sql, (name,)).fetchone()
            assert row is not None
            out[name] = {"table_bytes": row[0], "free_bytes": row[1], "free_percent": row[2],
                         "dead_bytes": row[3], "dead_percent": row[4],
                         "bloat_percent": round(row[2] + row[4], 2)}
    return out


def wellkept_tables(bloat_run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tables section of wellkept's bloat details, by table name."""
    rows = (bloat_run["result"].get("details") or {}).get("tables") or []
    return {str(r.get("table")): r for r in rows if isinstance(r, dict)}


def wellkept_estimate(name: str, listed: dict[str, Any], table_bytes: int,
                      ) -> tuple[float | None, int | None, float | None]:
    """wellkept's (percent, bytes, upper bound) for a table. The list is worst first, so an
    unlisted table wastes at most what the last listed one does: taken as 0, with that bound."""
    if name in listed:
        return listed[name].get("bloat_percent"), listed[name].get("bloat_bytes"), None
    if not listed:
        return None, None, None
    floor = min(r.get("bloat_bytes") or 0 for r in listed.values())
    return 0.0, 0, round(100.0 * floor / table_bytes, 2) if table_bytes else None


def check_postgres_estimate(name: str, cp: dict[str, Any]) -> tuple[float | None, int | None]:
    """check_postgres's (percent, bytes); it leaves out tables with no wasted page, so when
    its output was not cut at --perflimit an unlisted table has no waste."""
    c = cp["tables"].get(name)
    if c is None:
        return (0.0, 0) if cp["complete"] else (None, None)
    if c["pages"] == 0:
        return 0.0, c["wasted_bytes"]
    wasted_pages = max(0, c["pages"] - c["expected_pages"])
    return round(100.0 * wasted_pages / c["pages"], 2), c["wasted_bytes"]


def per_table(specs: list[dict[str, Any]], truth: dict[str, Any], wk: dict[str, Any],
              cp: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per large table: what was deleted, pgstattuple, wellkept, check_postgres."""
    rows = []
    for spec in specs:
        name = spec["table"]
        wk_percent, wk_bytes, wk_bound = wellkept_estimate(name, wk, truth[name]["table_bytes"])
        cp_percent, cp_bytes = check_postgres_estimate(name, cp)
        rows.append({**spec, "table_bytes": truth[name]["table_bytes"],
                     "pgstattuple_percent": truth[name]["bloat_percent"],
                     "wellkept_percent": wk_percent, "wellkept_bytes": wk_bytes,
                     "wellkept_listed": name in wk, "wellkept_unlisted_bound_percent": wk_bound,
                     "check_postgres_percent": cp_percent, "check_postgres_bytes": cp_bytes,
                     "check_postgres_ratio": cp["tables"].get(name, {}).get("ratio"),
                     "check_postgres_listed": name in cp["tables"]})
    return rows


def error_summary(rows: list[dict[str, Any]], key: str, ref: str) -> dict[str, Any]:
    """Mean absolute and worst difference, in percentage points, of `key` against `ref`."""
    diffs = [(abs(r[key] - r[ref]), r["table"]) for r in rows
             if r[key] is not None and r[ref] is not None]
    if not diffs:
        return {"tables": 0, "missing": len(rows), "mae_pp": None, "worst_pp": None}
    worst = max(diffs)
    return {"tables": len(diffs), "missing": len(rows) - len(diffs),
            "mae_pp": round(statistics.fmean(d for d, _ in diffs), 2),
            "worst_pp": round(worst[0], 2), "worst_table": worst[1]}


def bytes_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """wellkept's bloat_bytes against check_postgres's wasted bytes, as a ratio."""
    ratios = [r["wellkept_bytes"] / r["check_postgres_bytes"] for r in rows
              if r["wellkept_bytes"] is not None and r["check_postgres_bytes"]]
    if not ratios:
        return {"tables": 0}
    return {"tables": len(ratios), "median_ratio": round(statistics.median(ratios), 3),
            "min_ratio": round(min(ratios), 3), "max_ratio": round(max(ratios), 3)}


# --- reporting ----------------------------------------------------------------------------------


def verdict(run: dict[str, Any], goal: float | None) -> str:
    if goal is None:
        return "-"
    if run["seconds"] >= goal:
        return f"MISSED (+{run['seconds'] - goal:.1f}s)"
    return "met" if run["status"] == "completed" else f"met, but {run['status']}"


def print_times(runs: list[dict[str, Any]]) -> None:
    print(f"\n{'check':<22} {'median':>8} {'max':>7} {'goal':>7}  {'verdict':<22} status")
    for run in runs:
        goal = GOAL_SECONDS if run["check"] in WK_TASKS else None
        goal_text = f"< {goal:g}s" if goal else "-"
        print(f"{run['check']:<22} {run['seconds']:7.2f}s {max(run['samples']):6.2f}s "
              f"{goal_text:>7}  {verdict(run, goal):<22} {run['status']}")
        for error in run.get("errors", [])[:3]:
            print(f"{'':<22} error: {str(error).splitlines()[0][:100]}")


def fmt(value: float | None, listed: bool = True) -> str:
    return "-" if value is None else f"{value:.1f}" + ("" if listed else "*")


def print_accuracy(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(f"\n{'table':<8} {'rows':>8} {'deleted':>8} {'pgstattuple':>12} {'wellkept':>9} "
          f"{'check_pg':>9}   (bloat %)")
    for r in rows:
        print(f"{r['table']:<8} {r['rows']:>8,} {r['deleted_percent']:>7}% "
              f"{fmt(r['pgstattuple_percent']):>12} "
              f"{fmt(r['wellkept_percent'], r['wellkept_listed']):>9} "
              f"{fmt(r['check_postgres_percent'], r['check_postgres_listed']):>9}")
    if not all(r["wellkept_listed"] and r["check_postgres_listed"] for r in rows):
        bounds = [r["wellkept_unlisted_bound_percent"] or 0 for r in rows]
        print("* not listed, taken as 0: check_postgres lists every table with a wasted page;\n"
              f"  wellkept's top list ends at {max(bounds):.2f}% of these tables' size or less")
    print(f"\n{'comparison (percentage points)':<40} {'tables':>6} {'MAE':>7} {'worst':>7}")
    for label, key in (("wellkept vs check_postgres", "agreement"),
                       ("wellkept vs pgstattuple", "wellkept_error"),
                       ("check_postgres vs pgstattuple", "check_postgres_error")):
        s = summary[key]
        print(f"{label:<40} {s['tables']:>6} {fmt(s['mae_pp']):>7} {fmt(s['worst_pp']):>7}"
              + (f"  ({s['missing']} missing)" if s["missing"] else ""))
    b = summary["bytes"]
    if b["tables"]:
        print(f"bloat bytes, wellkept / check_postgres: median {b['median_ratio']:.2f} "
              f"(range {b['min_ratio']:.2f}-{b['max_ratio']:.2f}) over {b['tables']} tables")


# --- main ---------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=10_000, help="tables in all")
    parser.add_argument("--large", type=int, default=20, help="how many of them are large")
    parser.add_argument("--batch", type=int, default=100,
                        help="tables per DDL transaction (each takes ~6 locks in the shared "
                             "lock table, sized by max_locks_per_transaction)")
    parser.add_argument("--runs", type=int, default=3, help="time each check N times (median)")
    parser.add_argument("--bloat-top", type=int, default=100, help="wellkept bloat `top`")
    parser.add_argument("--perflimit", type=int, default=1000, help="check_postgres rows")
    parser.add_argument("--cp-timeout", type=int, default=900,
                        help="check_postgres --timeout in seconds (its default is 30)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--db", default="wellkept_bench_catalog")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if not 0 <= args.large < args.tables:
        parser.error("--large must be smaller than --tables")
    return args


def machine(args: argparse.Namespace, cp_exe: str) -> dict[str, Any]:
    with connect(args, args.db) as conn:
        row = conn.execute("SELECT current_setting('server_version'), "
                           "current_setting('autovacuum'), "
                           "(SELECT count(*) FROM pg_class)").fetchone()
    assert row is not None
    return {"python": platform.python_version(), "postgresql": row[0], "autovacuum": row[1],
            "pg_class_rows": row[2], "check_postgres": check_postgres_version(cp_exe),
            "cpus": os.cpu_count(), "platform": platform.platform()}


def measure(args: argparse.Namespace, cp_exe: str) -> list[dict[str, Any]]:
    """Time the three wellkept checks and check_postgres, each through its own CLI."""
    exe = shutil.which("wellkept", path=str(Path(sys.executable).parent)) or "wellkept"
    runs = []
    with tempfile.TemporaryDirectory(prefix="wellkept-bench-") as folder:
        config = write_config(Path(folder), args, args.bloat_top)
        for check in WK_TASKS:
            print(f"timing wellkept run {check} ...", flush=True)
            runs.append(run_wellkept(exe, config, check, args.runs))
    print("timing check_postgres --action=bloat ...", flush=True)
    runs.append(run_check_postgres(cp_exe, args, args.runs))
    return runs


def main() -> None:
    args = parse_args()
    compile_wellkept()
    cp_exe = find_check_postgres()
    try:
        built = build(args)
        facts = machine(args, cp_exe)
        runs = measure(args, cp_exe)
        specs = built["large"]
        truth = pgstattuple_truth(args, [s["table"] for s in specs])
    finally:
        if not args.keep:
            recreate_database(args, create=False)
    rows = per_table(specs, truth, wellkept_tables(runs[1]), runs[3])
    summary = {"agreement": error_summary(rows, "wellkept_percent", "check_postgres_percent"),
               "wellkept_error": error_summary(rows, "wellkept_percent", "pgstattuple_percent"),
               "check_postgres_error": error_summary(rows, "check_postgres_percent",
                                                     "pgstattuple_percent"),
               "bytes": bytes_agreement(rows)}
    print_times(runs)
    print_accuracy(rows, summary)
    for run in runs:  # the per-table figures are in `large`; keep each run's metrics only
        run.pop("tables", None)
        run["metrics"] = run.pop("result", {}).get("metrics")
    out = Path(__file__).parent / "results" / "postgres_catalog.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "measured_at": datetime.now(UTC).isoformat(), "machine": facts, "tables": args.tables,
        "large_tables": args.large, "goal_seconds": GOAL_SECONDS, "build": built["timings"],
        "runs": runs, "large": rows, "pgstattuple": truth, "summary": summary,
    }, indent=2, default=str) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
