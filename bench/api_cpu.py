"""CPU per request of the history pages, in process: what one page costs the server.

The wrk figures of `bench/api.py` are latencies under 16 connections on a shared 2-core
machine, mostly queueing, and they move with whatever else runs there. This measures the work
itself: the ASGI app that `wellkept serve` runs (FastAPI, its validation, the threadpool, the
store read, the JSON), driven in process without HTTP, over the same history of 10,000 runs,
as CPU time (time.process_time, every thread of the process) per request. `GET
/openapi.json` is the baseline (FastAPI serving a document it keeps in memory). The store's
read of a page is shown alone too, as RunRecords (`list_runs`) and as the API reads it
(`read_page`). Compare a change with the code before it on the same machine in the same hour.

    .venv/bin/python bench/api_cpu.py [--requests 400] [--rounds 5] [--runs 10000]

Prints a table (the best round and the median, in ms of CPU per request) and writes
bench/results/api_cpu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import source_state

from api import deep_cursor, fill_history, make_config


def asgi_get(app: Any, path: str, query: str) -> Callable[[], Any]:
    """A coroutine function that sends one GET through ``app`` and checks it answered 200."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> None:
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app({**scope, "state": {}}, receive, send)
        if status != [200]:
            raise SystemExit(f"GET {path}?{query} answered {status}")

    return one


def measure(run: Callable[[int], None], requests: int, rounds: int) -> dict[str, float]:
    run(max(20, requests // 10))  # warm up: connections, compiled statements, caches
    per = []
    for _ in range(rounds):
        start = time.process_time()
        run(requests)
        per.append((time.process_time() - start) / requests * 1000)
    return {"best_ms": round(min(per), 3), "median_ms": round(statistics.median(per), 3),
            "rounds_ms": [round(p, 3) for p in per]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    from wellkept.api import create_app
    from wellkept.config import load_config
    from wellkept.engine import Engine

    folder = Path(tempfile.mkdtemp(prefix="wellkept-bench-api-cpu-"))
    try:
        config = make_config(folder, 8000)
        sqlite3.connect(folder / "app.sqlite3").close()
        fill_history(config, args.runs)
        deep = deep_cursor(config, args.runs - 100)
        engine = Engine(load_config(config))
        app = create_app(engine)
        loop = asyncio.new_event_loop()
        results: dict[str, Any] = {}
        cases = (("baseline: GET /openapi.json", "/openapi.json", ""),
                 ("GET /maintenance/history?limit=50", "/maintenance/history", "limit=50"),
                 ("GET /maintenance/history?limit=50&cursor=… (run 9,900)",
                  "/maintenance/history", f"limit=50&cursor={deep}"),
                 ("GET /maintenance/history?limit=50&task=task-07", "/maintenance/history",
                  "limit=50&task=task-07"))
        for name, path, query in cases:
            one = asgi_get(app, path, query)

            def run(n: int, one: Callable[[], Any] = one) -> None:
                async def many() -> None:
                    for _ in range(n):
                        await one()
                loop.run_until_complete(many())

            results[name] = measure(run, args.requests, args.rounds)
        store = engine.store
        results["store alone: list_runs(limit=51), RunRecords"] = measure(
            lambda n: [store.list_runs(limit=51) for _ in range(n)], args.requests, args.rounds)
        try:
            from wellkept.history.pages import read_page
        except ImportError:  # measuring a commit from before the lean read
            pass
        else:
            results["store alone: read_page(limit=51), the API's lean read"] = measure(
                lambda n: [read_page(store, limit=51) for _ in range(n)], args.requests,
                args.rounds)
        loop.close()
        engine.store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.runs} runs in the history; CPU per request in process "
          f"({args.requests} requests x {args.rounds} rounds)")
    print(f"{'request':<60} {'best ms':>8} {'median ms':>10}")
    for name, r in results.items():
        print(f"{name:<60} {r['best_ms']:>8.3f} {r['median_ms']:>10.3f}")
    out = Path(__file__).resolve().parent / "results" / "api_cpu.json"
    out.write_text(json.dumps({
        "benchmark": "api_cpu", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs_in_history": args.runs, "requests": args.requests, "rounds": args.rounds,
        "results": results,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "source": source_state()}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
