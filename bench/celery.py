"""The Celery executor against the inline one: throughput, dispatch latency, overhead per run.

Each pass runs 200 short runs (`stats` on four small SQLite targets) through a real coordinator
(in this process) on a fresh PostgreSQL state store: 200 schedules whose one slot falls on the
same second, so the coordinator claims 200 slots at once. Passes:

- inline: the coordinator's own threads run them (`coordinator.max_concurrent: 2`, the cores);
- celery, 1 worker and 2 workers (`wellkept worker --concurrency 2` subprocesses, Redis broker);
  the coordinator keeps up to 8 runs in flight.

Dispatch latency is the slot's time to the run's start (from the history rows); throughput is
runs over the time from the slot to the last run's end. Then 40 runs one at a time (nothing in
parallel) through each executor give the Celery path's overhead per run.

    .venv/bin/python bench/celery.py [--runs 200] [--redis redis://127.0.0.1:6379/7]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis. Prints a table and writes
bench/results/celery.json. The machine is shared: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# this file is named celery.py: its folder must not shadow the celery package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def source_state() -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_common", HERE / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_common"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    state: dict[str, Any] = module.source_state()
    return state


PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_config(folder: Path, state: str, broker: str, *, celery: bool, runs: int,
                at: datetime, inflight: int) -> Path:
    lines = [f'state: "{state}"', "targets:"]
    for i in range(4):
        db = folder / f"app{i}.sqlite3"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.commit()
        conn.close()
        lines.append(f'  app{i}: {{url: "sqlite:///{db.name}"}}')
    lines += ["tasks:"] + [f"  st{i}: {{kind: stats, target: app{i}}}" for i in range(4)]
    cron = f"{at.second} {at.minute} {at.hour} {at.day} {at.month} *"
    lines += ["schedules:" + ("" if runs else " {}")] + [
        f'  s{n}: {{cron: "{cron}", tasks: [st{n % 4}]}}' for n in range(runs)]
    lines += ["coordinator: {heartbeat: 1s, leader_lease: 5s, reap_every: 5s, "
              f"max_concurrent: {inflight}}}"]
    if celery:
        lines += [f'executor: {{kind: celery, broker: "{broker}", queue: bench-{folder.name}}}']
    path = folder / "wellkept.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fresh_database() -> str:
    import psycopg

    name = f"wk_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def start_workers(config: Path, count: int) -> list[subprocess.Popen[bytes]]:
    wellkept = str(Path(sys.executable).parent / "wellkept")
    procs = []
    for i in range(count):
        log = (config.parent / f"worker{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [wellkept, "-c", str(config), "worker", "--concurrency", "2",
             "--hostname", f"bench{i}@%h"], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True))
    deadline = time.monotonic() + 60
    for i in range(count):
        while "ready" not in (config.parent / f"worker{i}.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                stop_workers(procs)
                raise SystemExit(f"worker {i} did not start")
            time.sleep(0.2)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def slots_pass(name: str, *, celery: bool, workers: int, runs: int, broker: str) -> dict[str, Any]:
    from wellkept.config import load_config
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine

    state = fresh_database()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            at = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
            cfg = make_config(folder, state, broker, celery=celery, runs=runs, at=at,
                              inflight=8 if celery else 2)
            engine = Engine(load_config(cfg))
            engine.store.prepare()
            if celery:
                procs = start_workers(cfg, workers)
            coord = Coordinator(engine)
            thread = threading.Thread(target=lambda: coord.serve(install_signals=False),
                                      daemon=True)
            thread.start()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                done = [r for r in engine.store.list_runs(limit=runs + 10)
                        if r.status.is_final]
                if len(done) >= runs:
                    break
                time.sleep(0.5)
            coord.request_shutdown()
            thread.join(60)
            records = engine.store.list_runs(limit=runs + 10)
            engine.store.close()
    finally:
        stop_workers(procs)
        drop_database(state)
    assert len(records) == runs and all(r.status.is_final for r in records), len(records)
    failed = [r for r in records if r.status.is_failure]
    latency = [(r.started_at - (r.scheduled_for or at)).total_seconds() * 1000 for r in records]
    last_end = max(r.finished_at for r in records if r.finished_at)
    span = (last_end - at).total_seconds()
    return {"pass": name, "runs": runs, "failed": len(failed), "workers": workers,
            "throughput_per_s": round(runs / span, 1), "seconds": round(span, 2),
            "latency_ms_p50": round(percentile(latency, 50), 1),
            "latency_ms_p99": round(percentile(latency, 99), 1),
            "run_ms_mean": round(statistics.mean(r.duration_seconds or 0 for r in records)
                                 * 1000, 1)}


def sequential_pass(*, celery: bool, runs: int, broker: str) -> float:
    """Seconds per run, one run at a time, through the executor (no parallelism)."""
    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.executor import make_executor
    from wellkept.types import Trigger

    state = fresh_database()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = make_config(Path(tmp), state, broker, celery=celery, runs=0,
                              at=datetime.now(UTC), inflight=1)
            engine = Engine(load_config(cfg))
            engine.store.prepare()
            if celery:
                procs = start_workers(cfg, 1)
            executor = make_executor(engine)
            executor.start()
            request = engine.resolve(["st0"])[0]
            for _ in range(3):                                   # warm up
                executor.run(request, trigger=Trigger.MANUAL)
            t0 = time.perf_counter()
            for _ in range(runs):
                executor.run(request, trigger=Trigger.MANUAL)
            per_run = (time.perf_counter() - t0) / runs
            executor.close()
            engine.store.close()
    finally:
        stop_workers(procs)
        drop_database(state)
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    passes = []
    for name, celery_on, count in (("inline", False, 0), ("celery, 1 worker", True, 1),
                                   ("celery, 2 workers", True, 2)):
        passes.append(slots_pass(name, celery=celery_on, workers=count, runs=args.runs,
                                 broker=args.redis))
        print(passes[-1], flush=True)
    inline = sequential_pass(celery=False, runs=args.sequential, broker=args.redis)
    celery = sequential_pass(celery=True, runs=args.sequential, broker=args.redis)
    redis.Redis.from_url(args.redis).flushdb()
    print("| pass | runs | throughput | latency p50 | latency p99 | mean run | failed |\n"
          "|---|---|---|---|---|---|---|")
    for p in passes:
        print(f"| {p['pass']} | {p['runs']} | {p['throughput_per_s']}/s | "
              f"{p['latency_ms_p50']} ms | {p['latency_ms_p99']} ms | {p['run_ms_mean']} ms | "
              f"{p['failed']} |")
    print(f"\none at a time: inline {inline * 1000:.1f} ms/run, celery {celery * 1000:.1f} "
          f"ms/run, overhead {(celery - inline) * 1000:.1f} ms/run")
    out = Path(__file__).resolve().parent / "results" / "celery.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(), "source": source_state(), "passes": passes,
        "sequential": {"runs": args.sequential, "inline_ms_per_run": round(inline * 1000, 1),
                       "celery_ms_per_run": round(celery * 1000, 1),
                       "overhead_ms_per_run": round((celery - inline) * 1000, 1)},
        "machine": "shared, 2 cores"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
