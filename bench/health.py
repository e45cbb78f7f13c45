"""`wellkept health` against five targets, all up, then with one blackholed, next to the peers.

Goals: with every target up the whole command takes under 1 s; a target whose address drops
packets costs no more than its timeout, and the whole command ends within the largest timeout
plus 0.5 s (both timed as whole commands, from start to exit). The peer is what a cron job
would run instead, one after another: check_postgres `--action=connection` for each PostgreSQL
target (Debian package `check-postgres`, installed with
apt-get when missing) and `redis-cli ping` for each Redis target.

The targets: three PostgreSQL databases (made and dropped by the script) and two Redis
databases on the local servers. The blackhole is a loopback socket the script opens that
accepts connections and never answers; in the second case one PostgreSQL target points at it,
with a 2 s timeout for wellkept and `--timeout=2` for check_postgres.

    .venv/bin/python bench/health.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the repo, for tests.servers
from _common import compile_wellkept
from _peers import find_or_install
from tests.servers import blackhole  # the same silent socket the fault tests use

PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"
DATABASES = ["wk_bench_health_1", "wk_bench_health_2", "wk_bench_health_3"]
REDIS_DBS = [13, 14]
TIMEOUT_S = 2
GOAL_UP_S = 1.0
SLACK_S = 0.5


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qAtc", sql], check=True, capture_output=True)


def config(folder: Path, pg_ports: list[int]) -> Path:
    lines = ["targets:"]
    for i, (db, port) in enumerate(zip(DATABASES, pg_ports, strict=True)):
        lines.append(f"  pg{i + 1}: {{url: \"postgresql://postgres@127.0.0.1:{port}/{db}\", "
                     f"timeout: {TIMEOUT_S}s}}")
    for n in REDIS_DBS:
        lines.append(f"  cache{n}: {{url: \"{REDIS}/{n}\", timeout: {TIMEOUT_S}s}}")
    path = folder / "wellkept.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wellkept_case(exe: str, cfg: Path, runs: int) -> tuple[list[float], dict[str, object]]:
    subprocess.run([exe, "-c", str(cfg), "health", "-o", "json"], capture_output=True)
    samples, report = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-c", str(cfg), "health", "-o", "json"],
                              capture_output=True, text=True)
        samples.append(time.perf_counter() - t0)
        report = json.loads(proc.stdout)
    return samples, report


def bounded(cmd: list[str], env: dict[str, str]) -> None:
    """Run a peer command; kill its whole process group if it outlives the budget (the psql
    that check_postgres starts would otherwise keep the pipes open)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        proc.wait(timeout=TIMEOUT_S * 5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def peer_case(check_postgres: str, pg_ports: list[int], runs: int) -> list[float]:
    # check_postgres's --timeout is an alarm in its own process; the connect timeout of the
    # psql it runs comes from PGCONNECT_TIMEOUT, as for any libpq client
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(TIMEOUT_S)}
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for db, port in zip(DATABASES, pg_ports, strict=True):
            bounded([check_postgres, "--action=connection", "-H", "127.0.0.1", "-p", str(port),
                     "-u", "postgres", "--db", db, f"--timeout={TIMEOUT_S}"], env)
        for n in REDIS_DBS:
            bounded(["redis-cli", "-n", str(n), "-t", str(TIMEOUT_S), "ping"], env)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_wellkept()
    check_postgres = find_or_install("check-postgres", "check_postgres", "check_postgres.pl")
    exe = shutil.which("wellkept", path=str(Path(sys.executable).parent)) or "wellkept"
    for db in DATABASES:
        psql(f"DROP DATABASE IF EXISTS {db}")
        psql(f"CREATE DATABASE {db}")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp, blackhole() as hole:
            cases = {"all up": [5432, 5432, 5432], "one blackholed": [5432, 5432, hole]}
            for name, ports in cases.items():
                cfg = config(Path(tmp), ports)
                ours, report = wellkept_case(exe, cfg, args.runs)
                peer = peer_case(check_postgres, ports, args.runs)
                statuses = {t: r["status"] for t, r in report["targets"].items()}  # type: ignore[attr-defined]
                rows.append({"case": name, "wellkept_median_s": statistics.median(ours),
                             "wellkept_max_s": max(ours), "peer_median_s": statistics.median(peer),
                             "peer_max_s": max(peer),
                             "ratio": statistics.median(peer) / statistics.median(ours),
                             "statuses": statuses, "runs": args.runs})
                os.unlink(cfg)
    finally:
        for db in DATABASES:
            psql(f"DROP DATABASE IF EXISTS {db}")
    print(f"{'case':<16} {'wellkept median':>16} {'max':>7} {'peer median':>12} {'max':>7} "
          f"{'peer/wellkept':>14}")
    for r in rows:
        print(f"{r['case']:<16} {r['wellkept_median_s']:15.3f}s {r['wellkept_max_s']:6.3f}s "
              f"{r['peer_median_s']:11.3f}s {r['peer_max_s']:6.3f}s {r['ratio']:13.1f}x")
    up, hole_row = rows
    # both bounds are on the whole command, as a user times it: start-up, the check, the
    # record and the output
    goals = {"all up under 1 s": up["wellkept_median_s"] < GOAL_UP_S,
             f"blackholed command within {TIMEOUT_S} s + {SLACK_S} s":
                 hole_row["wellkept_max_s"] <= TIMEOUT_S + SLACK_S}
    for goal, met in goals.items():
        print(f"goal: {goal} -> {'met' if met else 'MISSED'}")
    print(f"blackholed case statuses: {hole_row['statuses']}")
    out = Path(__file__).parent / "results" / "health.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measured_at": datetime.now(UTC).isoformat(),
                               "python": platform.python_version(), "timeout_seconds": TIMEOUT_S,
                               "goals": goals, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
