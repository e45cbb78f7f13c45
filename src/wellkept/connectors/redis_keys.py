"""Redis figures and key walks: INFO sections for health and stats; SCAN, UNLINK, EXPIRE.

Keys are only ever found with ``SCAN`` (a cursor, ``COUNT`` at a time), never ``KEYS``, which
blocks the server for as long as it takes to list every key. Facts about a batch (TTL, OBJECT
IDLETIME) and actions on it (UNLINK, EXPIRE) go in one pipeline per batch. UNLINK frees memory
in a background thread, so the server does not stall on big values.
"""

from __future__ import annotations

from typing import Any

from wellkept.connector import KeyFacts, StatsReport
from wellkept.records import Metrics
from wellkept.units import human_bytes


def health_details(client: Any) -> dict[str, Any]:
    info = client.info()
    details: dict[str, Any] = {
        "used_memory_bytes": int(info.get("used_memory", 0)),
        "maxmemory_bytes": int(info.get("maxmemory", 0)),
        "connected_clients": int(info.get("connected_clients", 0)),
        "maxclients": _maxclients(client),
        "role": info.get("role")}
    if details["maxmemory_bytes"]:
        details["memory_percent"] = round(100.0 * details["used_memory_bytes"]
                                          / details["maxmemory_bytes"], 1)
    if details["maxclients"]:
        details["connection_percent"] = round(100.0 * details["connected_clients"]
                                              / details["maxclients"], 1)
    if info.get("loading"):
        details["degraded"] = "loading its dataset from disk"
    if info.get("role") == "slave" and info.get("master_link_status") != "up":
        link = info.get("master_link_status")
        details["degraded"] = f"replica whose link to its master is {link}"
    return details


def _maxclients(client: Any) -> int:
    try:
        return int(client.config_get("maxclients").get("maxclients", 0))
    except Exception:  # CONFIG may be renamed or refused (managed Redis): leave it out
        return 0


def stats(client: Any) -> StatsReport:
    info = client.info()
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    keyspace = {name: {"keys": int(v.get("keys", 0)), "expires": int(v.get("expires", 0)),
                       "avg_ttl_ms": int(v.get("avg_ttl", 0))}
                for name, v in info.items() if name.startswith("db") and isinstance(v, dict)}
    metrics: Metrics = {
        "used_memory_bytes": int(info.get("used_memory", 0)),
        "maxmemory_bytes": int(info.get("maxmemory", 0)),
        "connected_clients": int(info.get("connected_clients", 0)),
        "blocked_clients": int(info.get("blocked_clients", 0)),
        "keys": sum(d["keys"] for d in keyspace.values()),
        "keys_with_ttl": sum(d["expires"] for d in keyspace.values()),
        "hit_rate_percent": round(100.0 * hits / (hits + misses), 1) if hits + misses else 0.0,
        "evicted_keys": int(info.get("evicted_keys", 0)),
        "expired_keys": int(info.get("expired_keys", 0)),
    }
    if metrics["maxmemory_bytes"]:
        metrics["memory_percent"] = round(100.0 * metrics["used_memory_bytes"]
                                          / metrics["maxmemory_bytes"], 1)
    details = {"memory": {k: info.get(k) for k in (
        "used_memory", "used_memory_peak", "used_memory_rss", "maxmemory", "maxmemory_policy",
        "mem_fragmentation_ratio")},
        "clients": {k: info.get(k) for k in ("connected_clients", "blocked_clients",
                                             "maxclients")},
        "keyspace": keyspace,
        "stats": {"keyspace_hits": hits, "keyspace_misses": misses,
                  "evicted_keys": metrics["evicted_keys"],
                  "expired_keys": metrics["expired_keys"]},
        "server": {k: info.get(k) for k in ("redis_version", "role", "uptime_in_seconds")}}
    summary = (f"{human_bytes(metrics['used_memory_bytes'])} used"
               + (f" of {human_bytes(metrics['maxmemory_bytes'])}"
                  if metrics["maxmemory_bytes"] else "")
               + f", {metrics['keys']:,} keys ({metrics['keys_with_ttl']:,} with a TTL), "
               f"{metrics['connected_clients']} clients, hit rate "
               f"{metrics['hit_rate_percent']:g}%, {metrics['evicted_keys']:,} evicted")
    return StatsReport(metrics=metrics, details=details, summary=summary)


def scan(client: Any, pattern: str, cursor: int, count: int,
         key_type: str | None) -> tuple[int, list[bytes]]:
    extra = {"_type": key_type} if key_type else {}
    next_cursor, keys = client.scan(cursor=cursor, match=pattern, count=count, **extra)
    return int(next_cursor), list(keys)


def facts(client: Any, keys: list[bytes], idle: bool) -> list[KeyFacts]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        if idle:  # first: OBJECT IDLETIME does not count as an access, TTL neither
            pipe.object("idletime", key)
        pipe.ttl(key)
    answers = pipe.execute(raise_on_error=False)
    out = []
    step = 2 if idle else 1
    for i, key in enumerate(keys):
        ttl = answers[i * step + step - 1]
        seconds = answers[i * step] if idle else None
        out.append(KeyFacts(key, int(ttl) if isinstance(ttl, int) else -2,
                            int(seconds) if isinstance(seconds, int) else None))
    return out


def unlink(client: Any, keys: list[bytes]) -> int:
    return int(client.unlink(*keys)) if keys else 0


def expire(client: Any, keys: list[bytes], seconds: int) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.expire(key, seconds)
    return sum(1 for ok in pipe.execute() if ok)
