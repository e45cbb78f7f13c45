"""Backups: is wellkept's backup (pg_dump, zstd, sha256, manifest, exact counts) about as fast as
a bare pg_dump, and its restore test about as fast as a bare pg_restore?

Builds (dropped and recreated, dropped again at the end unless --keep) a PostgreSQL database of
at least --size-gb GiB: `events` (bigint key, timestamp, ints, md5 text, an index on the time),
`users` (jsonb profiles) and `orders` (numeric, text, an index on user_id), then VACUUM ANALYZE
and CHECKPOINT. Then, round by round (--runs), each of:

Backups (every artifact is checked afterwards: `pg_restore --list`, or wellkept's completed run)
- wellkept: `wellkept run bench-backup -o json` (custom format, zstd at --level on every core,
  sha256 while writing, the manifest with exact row counts taken in the dump's snapshot;
  `verify: none`, so that it times the backup alone);
- `pg_dump -Fc -Z LEVEL`: bare pg_dump at the same level (gzip, the only compression
  PostgreSQL 15's pg_dump has);
- `pg_dump -Fc -Z0 | zstd -LEVEL -T0`: the same algorithm and level as wellkept, in a shell
  pipeline;
- wellkept with `jobs: 2` (directory format, streamed as a tar) and bare
  `pg_dump -Fd -j2 -Z LEVEL`, against the single-process dumps.

Restores
- wellkept: `wellkept backups verify ID --tier restore` of the custom backup (a scratch
  database whose tables load unlogged, pg_restore fed from zstd, the checksum on the same
  pass, counts compared, the scratch database dropped);
- bare `pg_restore -d NEW` of the `pg_dump -Fc -Z LEVEL` file into a database created just
  before (timed together), and of a `-Z0` file (no decompression at all);
- with `jobs: 2`: wellkept's restore test of the directory backup, and `pg_restore -j2` of
  the `pg_dump -Fd -j2` folder.

A CHECKPOINT and a sync run before each restore (and before the first backup of a round), so
that no method pays for the writes of the one before it.

The table shows medians of the rounds; goals: backup <= 1.15x pg_dump, restore test <= 1.2x
pg_restore. Every round's figures go to bench/results/backup.json.

    .venv/bin/python bench/backup.py [--size-gb 1.0] [--runs 3] [--level 3] [--keep]
        [--host 127.0.0.1] [--port 5432] [--user postgres] [--db wellkept_bench_backup]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from _common import compile_wellkept, median_of, run_measured, source_state, wellkept_version

GOAL_BACKUP = 1.15
GOAL_RESTORE = 1.2
GIB = 1 << 30


def dsn(args: argparse.Namespace, db: str) -> str:
    return f"postgresql://{args.user}@{args.host}:{args.port}/{db}"


def admin(args: argparse.Namespace) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn(args, "postgres"), autocommit=True)


def drop(args: argparse.Namespace, db: str) -> None:
    with admin(args) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def build(args: argparse.Namespace) -> dict[str, Any]:
    drop(args, args.db)
    with admin(args) as conn:
        conn.execute(f'CREATE DATABASE "{args.db}"')
    scale = args.size_gb
    t0 = time.perf_counter()
    with psycopg.connect(dsn(args, args.db), autocommit=True) as conn:
        conn.execute("""CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz,
                        user_id int, kind smallint, payload text)""")
        conn.execute("INSERT INTO events SELECT g, now() - g * interval '1 second', g % 50000, "
                     "g % 7, md5(g::text) || md5((g * 7)::text) "
                     f"FROM generate_series(1, {int(6_000_000 * scale)}) g")
        conn.execute("CREATE INDEX ON events (created_at)")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text, profile jsonb)")
        conn.execute("INSERT INTO users SELECT g, 'user' || g || '@example.com', "
                     "jsonb_build_object('name', md5(g::text), 'age', g % 90, 'tags', "
                     "jsonb_build_array(g % 3, g % 5)) "
                     f"FROM generate_series(1, {int(1_000_000 * scale)}) g")
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, user_id int, total numeric, "
                     "note text)")
        conn.execute("INSERT INTO orders SELECT g, g % 1000000, (g % 10000) / 100.0, "
                     "repeat(md5(g::text), 2) "
                     f"FROM generate_series(1, {int(3_000_000 * scale)}) g")
        conn.execute("CREATE INDEX ON orders (user_id)")
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"seconds": round(time.perf_counter() - t0, 1), "bytes": int(size),
            "gib": round(size / GIB, 2)}


def write_config(folder: Path, args: argparse.Namespace) -> Path:
    base = {"kind": "backup", "target": "pg", "compression": "zstd", "level": args.level,
            "verify": "none", "destination": str(folder / "wk")}
    config = {"state": f"sqlite:///{folder / 'state.db'}",
              "targets": {"pg": {"url": dsn(args, args.db), "statement_timeout": "6h"}},
              "tasks": {"bench-backup": base, "bench-backup-j2": {**base, "jobs": 2}}}
    path = folder / "wellkept.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def wellkept_backup(exe: str, config: Path, task: str) -> dict[str, Any]:
    done = run_measured([exe, "-c", str(config), "run", task, "-o", "json"])
    result = json.loads(done.stdout)["results"][0] if done.stdout.strip() else {}
    if result.get("status") != "completed":
        sys.exit(f"wellkept {task} did not complete: {result.get('message') or done.stderr}")
    d = result["details"]
    return {"seconds": done.seconds, "run_seconds": result["duration_seconds"],
            "bytes": d["bytes"], "raw_bytes": d["raw_bytes"], "backup_id": d["backup_id"],
            "peak_rss_mb": done.peak_rss_mb, "command": done.command}


def wellkept_verify(exe: str, config: Path, backup_id: str) -> dict[str, Any]:
    done = run_measured([exe, "-c", str(config), "backups", "verify", backup_id, "--tier",
                         "restore", "-o", "json"])
    result = json.loads(done.stdout)["results"][0] if done.stdout.strip() else {}
    if result.get("status") != "completed":
        sys.exit(f"wellkept's restore test failed: {result.get('message') or done.stderr}")
    return {"seconds": done.seconds, "run_seconds": result["duration_seconds"],
            "restore_seconds": result["metrics"].get("restore_seconds"),
            "peak_rss_mb": done.peak_rss_mb, "command": done.command}


def shell(script: str, what: str) -> dict[str, Any]:
    """Time one shell pipeline (pipefail: any stage failing fails it)."""
    t0 = time.perf_counter()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{what} failed: {done.stderr.strip()[-500:]}")
    return {"seconds": round(seconds, 3), "command": what}


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def checkpoint(args: argparse.Namespace) -> None:
    """Write out what earlier methods left dirty, so that no method pays for the one before it:
    the server's buffers (a restore writes 1.5 GiB) and the kernel's dirty pages (the peers'
    dump files, written just before the first restore)."""
    with admin(args) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def one_round(args: argparse.Namespace, exe: str, config: Path, work: Path) -> dict[str, Any]:
    src, lvl = f"-d '{dsn(args, args.db)}'", args.level
    r: dict[str, Any] = {}
    checkpoint(args)
    r["wellkept"] = wellkept_backup(exe, config, "bench-backup")
    r["pg_dump_z"] = shell(f"pg_dump -Fc -Z {lvl} {src} -f {work}/z.pgdump",
                           f"pg_dump -Fc -Z {lvl}")
    r["pg_dump_z"]["bytes"] = size_of(work / "z.pgdump")
    r["pg_dump_zstd"] = shell(f"pg_dump -Fc -Z0 {src} | zstd -q -{lvl} -T0 -o {work}/p.zst",
                              f"pg_dump -Fc -Z0 | zstd -{lvl} -T0")
    r["pg_dump_zstd"]["bytes"] = size_of(work / "p.zst")
    r["wellkept_j2"] = wellkept_backup(exe, config, "bench-backup-j2")
    r["pg_dump_dir_j2"] = shell(f"pg_dump -Fd -j 2 -Z {lvl} {src} -f {work}/dir",
                                f"pg_dump -Fd -j 2 -Z {lvl}")
    r["pg_dump_dir_j2"]["bytes"] = size_of(work / "dir")
    shell(f"pg_dump -Fc -Z0 {src} -f {work}/z0.pgdump", "pg_dump -Fc -Z0")
    for name in ("z.pgdump", "z0.pgdump", "dir"):  # the peers' output must be whole
        shell(f"pg_restore --list {work}/{name} > /dev/null", f"pg_restore --list {name}")

    checkpoint(args)
    r["wellkept_restore"] = wellkept_verify(exe, config, r["wellkept"]["backup_id"])
    r["pg_restore_z"] = restore(args, f"pg_restore -d '{{url}}' {work}/z.pgdump",
                                f"createdb + pg_restore (-Z {lvl} file)")
    r["pg_restore_z0"] = restore(args, f"pg_restore -d '{{url}}' {work}/z0.pgdump",
                                 "createdb + pg_restore (-Z0 file)")
    checkpoint(args)
    r["wellkept_restore_j2"] = wellkept_verify(exe, config, r["wellkept_j2"]["backup_id"])
    r["pg_restore_dir_j2"] = restore(args, f"pg_restore -j 2 -d '{{url}}' {work}/dir",
                                     "createdb + pg_restore -j 2 (directory)")
    for path in work.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return r


def restore(args: argparse.Namespace, template: str, what: str) -> dict[str, Any]:
    db = f"{args.db}_restore"
    drop(args, db)
    checkpoint(args)
    t0 = time.perf_counter()
    with admin(args) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    timed = shell(template.format(url=dsn(args, db)), what)
    timed["seconds"] = round(time.perf_counter() - t0, 3)
    with psycopg.connect(dsn(args, db)) as conn:
        timed["rows"] = conn.execute("SELECT (SELECT count(*) FROM events) + "
                                     "(SELECT count(*) FROM users) + "
                                     "(SELECT count(*) FROM orders)").fetchone()[0]
    drop(args, db)
    return timed


def summarize(rounds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for method in rounds[0]:
        values = [r[method] for r in rounds]
        out[method] = {k: median_of([v.get(k) for v in values])
                       for k in values[0] if isinstance(values[0][k], int | float)}
        out[method]["command"] = values[0]["command"]
        out[method]["each_round_seconds"] = [v["seconds"] for v in values]
    return out


ROWS = [  # (method, what it is, compared with)
    ("wellkept", "wellkept backup (custom, zstd, sha256, manifest, counts)", "pg_dump_z"),
    ("pg_dump_z", "pg_dump -Fc -Z LEVEL (gzip)", None),
    ("pg_dump_zstd", "pg_dump -Fc -Z0 | zstd -LEVEL -T0", None),
    ("wellkept_j2", "wellkept backup, jobs: 2 (directory)", "wellkept"),
    ("pg_dump_dir_j2", "pg_dump -Fd -j 2 -Z LEVEL", "pg_dump_z"),
    ("wellkept_restore", "wellkept restore test (custom)", "pg_restore_z"),
    ("pg_restore_z", "createdb + pg_restore (-Z LEVEL file)", None),
    ("pg_restore_z0", "createdb + pg_restore (-Z0 file)", None),
    ("wellkept_restore_j2", "wellkept restore test, jobs: 2", "pg_restore_dir_j2"),
    ("pg_restore_dir_j2", "createdb + pg_restore -j 2 (directory)", None),
]


def report(summary: dict[str, dict[str, Any]], level: int) -> dict[str, Any]:
    print("\n| method | median | rounds | bytes | vs | ratio |\n|---|---|---|---|---|---|")
    for method, label, against in ROWS:
        row = summary[method]
        ratio = (f"{row['seconds'] / summary[against]['seconds']:.2f}x" if against else "-")
        size = f"{row['bytes'] / 1e6:,.0f} MB" if row.get("bytes") else "-"
        rounds = ", ".join(f"{s:.1f}" for s in row["each_round_seconds"])
        print(f"| {label.replace('LEVEL', str(level))} | {row['seconds']:.2f} s | {rounds} | "
              f"{size} | {against or '-'} | {ratio} |")
    b = summary["wellkept"]["seconds"]
    goals = {
        "backup_vs_pg_dump": b / summary["pg_dump_z"]["seconds"],
        "backup_vs_pg_dump_zstd_pipeline": b / summary["pg_dump_zstd"]["seconds"],
        "restore_vs_pg_restore": (summary["wellkept_restore"]["seconds"]
                                  / summary["pg_restore_z"]["seconds"]),
        "restore_vs_pg_restore_z0": (summary["wellkept_restore"]["seconds"]
                                     / summary["pg_restore_z0"]["seconds"]),
        "jobs2_vs_jobs1": summary["wellkept_j2"]["seconds"] / b,
    }
    print("\n| goal | ratio | verdict |\n|---|---|---|")
    for name, limit in (("backup_vs_pg_dump", GOAL_BACKUP),
                        ("backup_vs_pg_dump_zstd_pipeline", GOAL_BACKUP),
                        ("restore_vs_pg_restore", GOAL_RESTORE),
                        ("restore_vs_pg_restore_z0", GOAL_RESTORE)):
        print(f"| {name} <= {limit} | {goals[name]:.2f}x | "
              f"{'met' if goals[name] <= limit else 'MISSED'} |")
    print(f"| jobs: 2 vs jobs: 1 (information) | {goals['jobs2_vs_jobs1']:.2f}x | - |")
    return {k: round(v, 3) for k, v in goals.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gb", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--level", type=int, default=3)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5432)
    p.add_argument("--user", default="postgres")
    p.add_argument("--db", default="wellkept_bench_backup")
    args = p.parse_args()
    compile_wellkept()
    for tool in ("pg_dump", "pg_restore", "zstd"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (Debian packages postgresql-client, zstd)")
    exe = str(Path(sys.executable).parent / "wellkept")
    print(f"building {args.db} (about {args.size_gb} GiB) …", flush=True)
    built = build(args)
    print(f"built {built['gib']} GiB in {built['seconds']} s", flush=True)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="wellkept-bench-backup-") as tmp:
        work = Path(tmp) / "peers"
        work.mkdir()
        config = write_config(Path(tmp), args)
        for i in range(args.runs):
            print(f"round {i + 1} of {args.runs} …", flush=True)
            rounds.append(one_round(args, exe, config, work))
    if not args.keep:
        drop(args, args.db)
    summary = summarize(rounds)
    goals = report(summary, args.level)
    out = Path(__file__).resolve().parent / "results" / "backup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "database": built, "level": args.level, "runs": args.runs, "summary": summary,
        "goals": goals, "rounds": rounds, "source": source_state(),
        "machine": {"python": platform.python_version(), "wellkept": wellkept_version(exe),
                    "pg_dump": subprocess.run(["pg_dump", "--version"], capture_output=True,
                                              text=True).stdout.strip(),
                    "zstd": subprocess.run(["zstd", "--version"], capture_output=True,
                                           text=True).stdout.strip()}}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(Path(__file__).resolve().parent.parent)}")


if __name__ == "__main__":
    main()
