"""The coordinator's footprint and scheduling precision. Goals: RSS < 60 MB, CPU < 1% idle.

Two phases, each with a real `wellkept serve` on an SQLite state store and 10 schedules:

- idle: 10 schedules that do not fire during the window (Feb 29 at ten different hours): the
  resident memory (sampled every second) and the CPU used over the window;
- busy: 10 schedules staggered so that one slot comes due every second (schedule i fires at
  seconds i, i+10, … of every minute), each running `stats` on a small SQLite file: the delay
  from each slot's time to its run's start (from the history rows), p50 / p99 / max, and the
  footprint while working.

    .venv/bin/python bench/coordinator.py [--seconds 60]

Prints a table and writes bench/results/coordinator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

GOAL_RSS_MB, GOAL_CPU_PERCENT = 60.0, 1.0


def config(folder: Path, busy: bool) -> Path:
    lines = ["state: sqlite:///state.db", "targets:", '  app: {url: "sqlite:///app.sqlite3"}',
             "tasks:", "  st: {kind: stats, target: app}", "schedules:"]
    for i in range(10):
        cron = (",".join(str(s) for s in range(i, 60, 10)) + " * * * * *" if busy
                else f"0 {i + 1} 29 2 *")
        lines.append(f'  s{i}: {{cron: "{cron}", tasks: [st]}}')
    path = folder / "wellkept.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    conn = sqlite3.connect(folder / "app.sqlite3")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.commit()
    conn.close()
    return path


def leader_ready(folder: Path, pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(folder / "state.db", timeout=5)
            row = conn.execute("SELECT holder_pid FROM wk_leases WHERE name = 'scheduler'") \
                .fetchone()
            conn.close()
            if row and row[0] == pid:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    sys.exit("the coordinator did not become leader")


def measure(cfg: Path, seconds: float) -> dict[str, Any]:
    exe = shutil.which("wellkept", path=str(Path(sys.executable).parent)) or "wellkept"
    log = (cfg.parent / "serve.log").open("wb")
    proc = subprocess.Popen([exe, "-q", "-c", str(cfg), "serve"], stdout=log, stderr=log)
    try:
        leader_ready(cfg.parent, proc.pid)
        time.sleep(2)  # past start-up: migrations, the first recovery pass, imports on use
        ps = psutil.Process(proc.pid)
        cpu0, t0 = ps.cpu_times(), time.monotonic()
        started = datetime.now(UTC)
        rss = []
        while time.monotonic() - t0 < seconds:
            rss.append(ps.memory_info().rss / 2**20)
            time.sleep(1.0)
        cpu1, t1 = ps.cpu_times(), time.monotonic()
        cpu = 100.0 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (t1 - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    return {"rss_mb_max": max(rss), "rss_mb_mean": statistics.fmean(rss), "cpu_percent": cpu,
            "window_seconds": round(t1 - t0, 1), "delays": delays(cfg.parent, started)}


def delays(folder: Path, since: datetime) -> list[float]:
    """Slot time -> run start, for the runs whose slot fell in the window."""
    conn = sqlite3.connect(folder / "state.db")
    rows = conn.execute("SELECT scheduled_for, started_at FROM wk_runs WHERE scheduled_for "
                        "IS NOT NULL").fetchall()
    conn.close()
    out = []
    for slot, start in rows:
        slot_at = datetime.fromisoformat(slot).replace(tzinfo=UTC)
        if slot_at >= since:
            out.append((datetime.fromisoformat(start).replace(tzinfo=UTC) - slot_at)
                       .total_seconds())
    return sorted(out)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    results = {}
    for phase in ("idle", "busy"):
        folder = Path(tempfile.mkdtemp(prefix=f"wellkept-bench-{phase}-"))
        try:
            results[phase] = measure(config(folder, phase == "busy"), args.seconds)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    idle, busy = results["idle"], results["busy"]
    lag = busy["delays"]
    print(f"{'phase':<6} {'RSS max':>9} {'RSS mean':>9} {'CPU':>7} {'runs':>5} "
          f"{'delay p50':>10} {'p99':>8} {'max':>8}")
    for name, r in results.items():
        d = r["delays"]
        print(f"{name:<6} {r['rss_mb_max']:7.1f}MB {r['rss_mb_mean']:7.1f}MB "
              f"{r['cpu_percent']:6.2f}% {len(d):5d} "
              + (f"{percentile(d, 0.5) * 1000:8.1f}ms {percentile(d, 0.99) * 1000:6.1f}ms "
                 f"{max(d) * 1000:6.1f}ms" if d else f"{'-':>10} {'-':>8} {'-':>8}"))
    rss_ok = idle["rss_mb_max"] < GOAL_RSS_MB
    cpu_ok = idle["cpu_percent"] < GOAL_CPU_PERCENT
    print(f"goals (idle): RSS < {GOAL_RSS_MB:g} MB -> {'met' if rss_ok else 'MISSED'} "
          f"({idle['rss_mb_max']:.1f} MB); CPU < {GOAL_CPU_PERCENT:g}% -> "
          f"{'met' if cpu_ok else 'MISSED'} ({idle['cpu_percent']:.2f}%)")
    out = Path(__file__).parent / "results" / "coordinator.json"
    out.parent.mkdir(exist_ok=True)
    summary = {name: {k: v for k, v in r.items() if k != "delays"}
               | {"runs": len(r["delays"]),
                  "delay_p50_ms": percentile(r["delays"], 0.5) * 1000 if r["delays"] else None,
                  "delay_p99_ms": percentile(r["delays"], 0.99) * 1000 if r["delays"] else None,
                  "delay_max_ms": max(r["delays"]) * 1000 if r["delays"] else None}
               for name, r in results.items()}
    out.write_text(json.dumps({
        "measured_at": datetime.now(UTC).isoformat(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "seconds": args.seconds,
        "goals": {"rss_mb": GOAL_RSS_MB, "cpu_percent": GOAL_CPU_PERCENT},
        "goals_met": {"rss": rss_ok, "cpu": cpu_ok}, "phases": summary,
        "busy_delays_ms": [round(x * 1000, 2) for x in lag]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
