"""The head start of `wellkept health`: the checks begin as soon as the config is read, and the
health run made a moment later takes them over, so the time spent loading the store comes out
of the targets' timeouts instead of adding to them. A silent socket stands in for a target
whose address drops packets."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.servers import blackhole
from wellkept.config import Settings, load_config
from wellkept.health.check import check_health, head_start
from wellkept.registry import Registry


def settings_with_hole(tmp_path: Path, port: int, redis_url: str) -> Settings:
    (tmp_path / "wellkept.yml").write_text(f"""
targets:
  cache: {{url: "{redis_url}", timeout: 3s}}
  lost:  {{url: "redis://127.0.0.1:{port}/0", timeout: 1s}}
""")
    return load_config(tmp_path / "wellkept.yml")


def test_the_run_takes_over_a_head_start_and_its_deadline(tmp_path: Path,
                                                          redis_url: str) -> None:
    registry = Registry.default()
    with blackhole() as port:
        settings = settings_with_hole(tmp_path, port, redis_url)
        head_start(settings, registry)
        time.sleep(0.6)  # what loading the store and the engine would take
        t0 = time.monotonic()
        report = check_health(settings, registry)
        waited = time.monotonic() - t0
    # the 1 s timeout ran from the head start: 0.4 s were left of it, not a whole second more
    assert waited < 0.8, waited
    assert report["targets"]["lost"]["status"] == "down"
    assert report["targets"]["lost"]["error"] == "no answer within 1s"
    assert report["targets"]["cache"]["status"] == "up"


def test_a_head_start_for_other_inputs_is_not_taken(tmp_path: Path, redis_url: str) -> None:
    registry = Registry.default()
    with blackhole() as port:
        settings = settings_with_hole(tmp_path, port, redis_url)
        head_start(settings, registry, targets=["lost"])
        time.sleep(0.6)
        t0 = time.monotonic()
        report = check_health(settings, registry)  # every target: a check of its own
        waited = time.monotonic() - t0
        # taken once at most: a second check never reuses the first one's results
        head_start(settings, registry)
        check_health(settings, registry)
        t1 = time.monotonic()
        check_health(settings, registry)
        again = time.monotonic() - t1
    assert waited >= 0.95, waited
    assert set(report["targets"]) == {"cache", "lost"}
    assert again >= 0.95, again



#: run in a process of its own: the test process runs the blackhole's thread, and a process
#: with another thread does not fork (the head start then uses threads, which need no reaping)
ABANDON = """
import os, sys
from wellkept.config import load_config
from wellkept.health import check
from wellkept.probe import InChild
from wellkept.registry import Registry

settings, registry = load_config(sys.argv[1]), Registry.default()
check.head_start(settings, registry, targets=["lost"])
running = check._head.running
assert isinstance(running, InChild), running
check.check_health(settings, registry)       # other inputs: the head start is abandoned
try:
    os.waitpid(running._pid, os.WNOHANG)
except ChildProcessError:
    print("reaped")
"""


def test_a_head_start_that_is_not_taken_leaves_no_child_process(tmp_path: Path,
                                                                 redis_url: str) -> None:
    with blackhole() as port:
        settings_with_hole(tmp_path, port, redis_url)
        done = subprocess.run([sys.executable, "-c", ABANDON, str(tmp_path / "wellkept.yml")],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["reaped"]
