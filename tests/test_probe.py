"""Bounded jobs: in threads, and in a forked child process (what `wellkept health` uses for its
head start), each job bounded by its own limit, whatever the job does."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from wellkept.probe import Bounded, InChild, Jobs, start_bounded


def timed_out(name: str, limit: float) -> dict[str, Any]:
    return {"name": name, "timed_out": limit}


def jobs(hang: float) -> Jobs:
    return {"quick": (lambda: {"pid": os.getpid(), "value": 42}, 2.0),
            "hung": (lambda: time.sleep(hang) or {"late": True}, 0.5)}  # type: ignore[func-returns-value]


def test_in_a_child_each_job_is_bounded_and_the_results_come_back() -> None:
    t0 = time.monotonic()
    running = InChild({**jobs(hang=30), "broken": (lambda: {"value": 1 // 0}, 2.0)}, timed_out)
    found = running.collect()
    took = time.monotonic() - t0
    assert found["quick"]["value"] == 42 and found["quick"]["pid"] != os.getpid()
    assert found["hung"] == {"name": "hung", "timed_out": 0.5}
    # a job that raises has no result: it counts as timed out, and never crashes the caller
    assert found["broken"] == {"name": "broken", "timed_out": 2.0}
    assert took < 2.0 + InChild.MARGIN_SECONDS + 0.5, took
    # the child is gone (reaped), not left hanging on the sleeping job
    assert not os.path.exists(f"/proc/{running._pid}")


def test_a_child_that_dies_without_answering_counts_every_job_as_timed_out() -> None:
    running = InChild({"a": (lambda: os._exit(3), 1.0), "b": (lambda: 7, 1.0)}, timed_out)
    t0 = time.monotonic()
    found = running.collect()
    assert found == {"a": {"name": "a", "timed_out": 1.0}, "b": {"name": "b", "timed_out": 1.0}}
    assert time.monotonic() - t0 < 1.0  # the pipe closed: no wait for the limits


def test_threads_give_the_same_answers() -> None:
    found = Bounded(jobs(hang=1.0), timed_out).collect()
    assert found["quick"] == {"pid": os.getpid(), "value": 42}
    assert found["hung"] == {"name": "hung", "timed_out": 0.5}


def test_no_fork_beside_running_threads() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert isinstance(start_bounded({"x": (lambda: 1, 1.0)}, timed_out, own_process=True),
                          Bounded)
    finally:
        stop.set()
        other.join()


def test_a_target_that_refuses_is_named_as_the_config_writes_it(tmp_path: Any) -> None:
    """The error names the address the config gives (127.0.0.1, [::1]), not the lock key's
    one spelling of loopback, and never the user or password."""
    from tests.helpers import free_port
    from wellkept.config import load_config
    from wellkept.probe import ping_target
    from wellkept.registry import Registry

    port = free_port()  # nothing listens there
    (tmp_path / "wellkept.yml").write_text(f"""
targets:
  pg:    {{url: "postgresql://app:s3cret-pw@127.0.0.1:{port}/shop", timeout: 2s}}
  maria: {{url: "mysql://root:s3cret-pw@127.0.0.1:{port}/shop", timeout: 2s}}
  cache: {{url: "redis://:s3cret-pw@[::1]:{port}/0", timeout: 2s}}
""")
    settings, registry = load_config(tmp_path / "wellkept.yml"), Registry.default()
    errors = {name: ping_target(name, settings, registry)["error"]
              for name in ("pg", "maria", "cache")}
    assert errors["pg"].startswith(f"cannot connect to postgresql://127.0.0.1:{port}/shop: ")
    assert errors["maria"].startswith(f"cannot connect to mysql://127.0.0.1:{port}/shop: ")
    assert errors["cache"].startswith(f"cannot reach redis://[::1]:{port}/0: ")
    assert not [e for e in errors.values() if "s3cret" in e or "app@" in e]


def test_a_socket_target_that_refuses_is_named_by_its_socket(tmp_path: Any) -> None:
    """A PostgreSQL URL without a host (the Unix socket) is named as written, not as
    localhost:5432, and still without its password or other parameters."""
    from wellkept.config import load_config
    from wellkept.probe import ping_target
    from wellkept.registry import Registry

    (tmp_path / "wellkept.yml").write_text(f"""
targets:
  sock:  {{url: "postgresql://app:s3cret-pw@/shop?host={tmp_path}&sslmode=disable"}}
  bare:  {{url: "postgresql://:6999/shop?host={tmp_path}"}}
""")
    settings, registry = load_config(tmp_path / "wellkept.yml"), Registry.default()
    errors = {name: ping_target(name, settings, registry)["error"] for name in ("sock", "bare")}
    assert errors["sock"].startswith(f"cannot connect to postgresql:///shop?host={tmp_path}: ")
    assert errors["bare"].startswith(f"cannot connect to postgresql://:6999/shop?host={tmp_path}: ")
    assert not [e for e in errors.values() if "s3cret" in e or "app@" in e or "sslmode" in e]
