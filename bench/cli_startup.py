"""How fast does `wellkept --help` start? Goal: under 0.3 s.

Runs the installed command N times (after one warm-up), next to `python -c pass` as the floor,
prints a table and writes bench/results/cli_startup.json.

    .venv/bin/python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import compile_wellkept

GOAL_SECONDS = 0.3


def timed(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    compile_wellkept()
    exe = shutil.which("wellkept", path=str(Path(sys.executable).parent)) or "wellkept"
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "wellkept --help": [exe, "--help"],
        "wellkept --version": [exe, "--version"],
        "wellkept tasks": [exe, "tasks"],
    }
    rows = []
    for name, cmd in cases.items():
        s = timed(cmd, args.runs)
        rows.append({"case": name, "median_s": statistics.median(s), "max_s": max(s),
                     "min_s": min(s), "runs": args.runs})
    print(f"{'case':<26} {'median':>8} {'min':>8} {'max':>8}")
    for r in rows:
        print(f"{r['case']:<26} {r['median_s']:8.3f} {r['min_s']:8.3f} {r['max_s']:8.3f}")
    help_median = rows[1]["median_s"]
    verdict = "met" if help_median < GOAL_SECONDS else "MISSED"
    print(f"goal: wellkept --help median < {GOAL_SECONDS}s -> {verdict} ({help_median:.3f}s)")
    out = Path(__file__).parent / "results" / "cli_startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measured_at": datetime.now(UTC).isoformat(),
                               "python": platform.python_version(), "goal_seconds": GOAL_SECONDS,
                               "goal_met": help_median < GOAL_SECONDS, "rows": rows},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
