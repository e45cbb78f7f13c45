"""Redis stats and cache_cleanup through the CLI, checked in Redis itself. Every test uses its
own key prefix, so it is safe on a Redis that others use too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from wellkept.config import load_config
from wellkept.errors import ConfigError


def cfg(write_config: Callable[[str], Path], url: str, tasks: str) -> Path:
    return write_config(f"""
        targets:
          cache: {{url: "{url}"}}
        tasks:
        {tasks}
        """)


def run(config: Path, *args: str) -> dict[str, Any]:
    proc = run_cli("-c", str(config), "run", *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)["results"][0]
    return result


def commands(client: Any, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def test_delete_by_pattern_with_scan_and_unlink(redis_prefix: tuple[str, Any], redis_url: str,
                                                write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    pipe = client.pipeline()
    for i in range(2500):
        pipe.set(f"{name}:session:{i}", "x" * 200)
    for i in range(100):
        pipe.set(f"{name}:keep:{i}", "y")
    pipe.execute()
    config = cfg(write_config, redis_url, f"""  purge: {{kind: cache_cleanup, target: cache,
                   pattern: "{name}:session:*", batch_size: 300}}""")
    keys_before, scans_before = commands(client, "keys"), commands(client, "scan")
    preview = run(config, "purge", "--dry-run")
    assert preview["metrics"]["keys_matched"] == 2500 and preview["metrics"]["keys_deleted"] == 0
    assert client.exists(f"{name}:session:7") == 1
    assert len(preview["details"]["sample"]) == 20
    result = run(config, "purge")
    assert result["metrics"]["keys_deleted"] == 2500
    assert result["metrics"]["batches"] > 1
    assert result["metrics"]["memory_before_bytes"] > 0
    assert "memory_after_bytes" in result["metrics"]
    assert sum(1 for _ in client.scan_iter(match=f"{name}:session:*")) == 0
    assert sum(1 for _ in client.scan_iter(match=f"{name}:keep:*")) == 100
    assert commands(client, "keys") == keys_before  # never KEYS
    assert commands(client, "scan") > scans_before


def test_ttl_rules_and_idle_keys(redis_prefix: tuple[str, Any], redis_url: str,
                                 write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    for i in range(20):
        client.set(f"{name}:forever:{i}", i)
        client.set(f"{name}:expiring:{i}", i, ex=3600)
    config = cfg(write_config, redis_url, f"""  ttl: {{kind: cache_cleanup, target: cache,
                  pattern: "{name}:*", action: expire, ttl: 1d}}
          drop: {{kind: cache_cleanup, target: cache, pattern: "{name}:*",
                   only_without_ttl: true}}
          idle: {{kind: cache_cleanup, target: cache, pattern: "{name}:idle:*",
                   idle_longer_than: 1h}}""")
    given = run(config, "ttl")
    assert given["metrics"]["keys_expired"] == 20
    assert 86000 < client.ttl(f"{name}:forever:3") <= 86400
    assert client.ttl(f"{name}:expiring:3") <= 3600  # keys with a TTL keep theirs
    client.persist(f"{name}:forever:3")
    dropped = run(config, "drop")
    assert dropped["metrics"]["keys_deleted"] == 1
    assert client.exists(f"{name}:forever:3") == 0 and client.exists(f"{name}:forever:4") == 1
    for i in range(10):
        client.set(f"{name}:idle:{i}", i)
    for i in range(5, 10):  # untouched for two hours, as far as Redis knows (RESTORE IDLETIME):
        key = f"{name}:idle:{i}"  # no sleep, so a slow start of the command cannot age 0-4
        client.restore(key, 0, client.dump(key), replace=True, idletime=7200)
    assert client.object("idletime", f"{name}:idle:7") >= 7200
    idle = run(config, "idle")
    assert idle["metrics"]["keys_deleted"] == 5
    assert sorted(int(k.rsplit(b":", 1)[1]) for k in client.scan_iter(
        match=f"{name}:idle:*")) == [0, 1, 2, 3, 4]


def test_reset_preset_clears_counters(redis_prefix: tuple[str, Any], redis_url: str,
                                      write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    for user in range(30):
        client.incrby(f"{name}:ratelimit:{user}:daily", 40 + user)
    client.rpush(f"{name}:ratelimit:queue:daily", "job")  # not a counter: left alone
    config = cfg(write_config, redis_url, f"""  reset: {{kind: cache_cleanup, target: cache,
                    pattern: "{name}:ratelimit:*:daily", preset: reset}}""")
    result = run(config, "reset")
    assert result["metrics"]["keys_deleted"] == 30
    assert client.incr(f"{name}:ratelimit:3:daily") == 1  # counting starts again
    assert client.llen(f"{name}:ratelimit:queue:daily") == 1


def test_refuses_a_pattern_of_wildcards_only(redis_url: str,
                                             write_config: Callable[[str], Path]) -> None:
    config = cfg(write_config, redis_url, """  all: {kind: cache_cleanup, target: cache,
                  pattern: "*"}""")
    proc = run_cli("-c", str(config), "check")
    assert proc.returncode == 2
    assert "tasks.all" in proc.stderr and "wildcards only" in proc.stderr


@pytest.mark.parametrize(("pattern", "refused"), [
    ("*", True), ("[a-z]*", True), ("[^x]*", True), ("?[0-9]*", True),
    ("*:*", False), ("session:*", False), (r"\*", False), ("[ab]x*", False)])
def test_a_pattern_of_wildcards_and_classes_only_is_refused(
        write_config: Callable[[str], Path], pattern: str, refused: bool) -> None:
    """A character class matches any key too: '[a-z]*' names no prefix and acts on nearly
    every key, as '*' does; an escaped '\\*' is a literal star."""
    config = cfg(write_config, "redis://127.0.0.1:1/0", f"""  c: {{kind: cache_cleanup,
                  target: cache, pattern: {json.dumps(pattern)}}}""")
    if not refused:
        load_config(config, env={})
        return
    with pytest.raises(ConfigError, match="wildcards only"):
        load_config(config, env={})


def test_stats(redis_prefix: tuple[str, Any], redis_url: str,
               write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    client.set(f"{name}:a", 1)
    client.get(f"{name}:a")
    client.get(f"{name}:missing")
    config = cfg(write_config, redis_url, "  {}")
    result = run(config, "stats", "--target", "cache")
    m = result["metrics"]
    assert m["used_memory_bytes"] > 0 and m["connected_clients"] >= 1 and m["keys"] >= 1
    assert 0 <= m["hit_rate_percent"] <= 100 and "evicted_keys" in m
    assert result["details"]["keyspace"]


def test_an_interrupted_walk_records_the_keys_it_deleted(redis_prefix: tuple[str, Any],
                                                         redis_url: str,
                                                         write_config: Callable[[str], Path]
                                                         ) -> None:
    """SIGTERM (or Ctrl-C, or the time limit) between batches: the keys already deleted are
    gone, so the record counts them (partial_failure, incomplete), not a failure with none."""
    import signal
    import subprocess
    import time

    from tests.helpers import wellkept_bin

    name, client = redis_prefix
    client.mset({f"{name}:{i}": "x" for i in range(20_000)})
    config = cfg(write_config, redis_url, f"""  walk: {{kind: cache_cleanup, target: cache,
                   pattern: "{name}:*", batch_size: 100, pause: 50ms}}""")
    proc = subprocess.Popen([wellkept_bin(), "-c", str(config), "run", "walk"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    gone = 20_000 - sum(1 for _ in client.scan_iter(match=f"{name}:*", count=1000))
    assert 0 < gone < 20_000
    stopped = json.loads(run_cli("-c", str(config), "history", "-o", "json").stdout)[0]
    assert stopped["status"] == "partial_failure", stopped
    assert stopped["message"].startswith(f"interrupted (SIGTERM): deleted {gone:,} "), stopped
    assert stopped["metrics"]["keys_deleted"] == gone
    assert stopped["details"]["incomplete"] is True

    record = run(config, "walk")
    assert record["status"] == "completed", record
    assert not list(client.scan_iter(match=f"{name}:*", count=1000))


def test_a_shutdown_stops_the_walk_at_a_checkpoint_with_the_keys_it_deleted(
        redis_prefix: tuple[str, Any], redis_url: str, write_config: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator shutting down asks the run to stop at its next checkpoint: the record
    counts the keys already deleted, where it had no figures at all."""
    from wellkept.config import load_config
    from wellkept.context import RunContext
    from wellkept.engine import Engine

    name, client = redis_prefix
    client.mset({f"{name}:{i}": "x" for i in range(3000)})
    config = cfg(write_config, redis_url, f"""  walk: {{kind: cache_cleanup, target: cache,
                   pattern: "{name}:*", batch_size: 100}}""")
    checkpoint = RunContext.checkpoint

    def shut_down_after_three(self: RunContext, *args: Any, **kwargs: Any) -> None:
        if self.attempt == 1 and len(seen) == 2:
            self.request_stop("the coordinator is shutting down")
        seen.append(1)
        checkpoint(self, *args, **kwargs)

    seen: list[int] = []
    monkeypatch.setattr(RunContext, "checkpoint", shut_down_after_three)
    engine = Engine(load_config(config))
    record = engine.run_one(engine.resolve(["walk"])[0])
    gone = 3000 - sum(1 for _ in client.scan_iter(match=f"{name}:*", count=1000))
    assert str(record.status) == "partial_failure", record.message
    assert "then stopped at a checkpoint (the coordinator is shutting down)" in record.message
    assert 0 < record.metrics["keys_deleted"] == gone < 3000
    assert record.details["stopped_by"] == "stop" and record.details["incomplete"] is True
