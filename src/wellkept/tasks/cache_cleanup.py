"""cache_cleanup: delete keys by pattern, or give them a time to live, batch by batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from wellkept.connector import KeyCleanable, KeyFacts
from wellkept.context import RunContext
from wellkept.durations import Duration, format_duration
from wellkept.errors import StopRequested
from wellkept.records import Metrics, TaskResult, stopped_early
from wellkept.task import Task, TaskParams
from wellkept.units import human_bytes

SAMPLE = 20


class CacheCleanupParams(TaskParams):
    pattern: str = Field(description=(
        "SCAN MATCH pattern of the keys to act on, e.g. 'session:*' or 'ratelimit:*:daily'"))
    preset: Literal["reset"] | None = Field(None, description=(
        "reset: delete counters (string keys) so they start again from zero, as a daily "
        "rate-limit reset does"))
    action: Literal["delete", "expire"] = Field("delete", description=(
        "delete the keys (UNLINK), or give keys that have no TTL the time to live `ttl`"))
    ttl: Duration | None = Field(None, description="expire: the time to live to give")
    only_without_ttl: bool = Field(False, description=(
        "delete only keys that have no TTL (keys with one expire by themselves)"))
    idle_longer_than: Duration | None = Field(None, description=(
        "act only on keys not read or written for at least this long (OBJECT IDLETIME)"))
    key_type: Literal["string", "list", "set", "zset", "hash", "stream"] | None = Field(
        None, description="act only on keys of this type (SCAN TYPE)")
    batch_size: int = Field(500, ge=1, le=100_000, description=(
        "keys asked of each SCAN step (COUNT) and acted on per round trip"))
    max_keys: int | None = Field(None, ge=1, description="stop after acting on this many keys")
    pause: Duration = Field(timedelta(0), description="sleep between batches")

    @model_validator(mode="after")
    def _consistent(self) -> CacheCleanupParams:
        if not has_literal(self.pattern):
            raise ValueError("pattern: a pattern of wildcards only would act on every key; "
                             "name a prefix (FLUSHDB is the command for emptying a database)")
        if self.action == "expire" and self.ttl is None:
            raise ValueError("ttl: action expire needs the time to live to give, e.g. ttl: 1d")
        if self.preset == "reset" and self.action != "delete":
            raise ValueError("preset: reset deletes counters; it takes no action: expire")
        return self

    @property
    def effective_type(self) -> str | None:
        return self.key_type or ("string" if self.preset == "reset" else None)


def has_literal(pattern: str) -> bool:
    """Whether a Redis glob holds a literal character, outside ``*``, ``?`` and ``[…]``
    classes (``\\*`` is a literal star): without one it matches nearly every key."""
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            return True
        if char == "[":  # a class, as Redis reads it: up to the first unescaped ']'
            i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif char not in "*?":
            return True
        i += 1
    return False


class CacheCleanup(Task):
    """Delete keys matching a pattern, or give keys without a TTL one, walking with SCAN.

    Redis: keys are found with `SCAN MATCH pattern COUNT batch_size` (optionally `TYPE`), a
    cursor walk that never blocks the server the way `KEYS` would, and acted on in batches:
    `UNLINK` (memory is freed in a background thread) or, with `action: expire`, `EXPIRE` on
    the keys that have no TTL yet. `only_without_ttl` deletes only keys that would never expire
    by themselves; `idle_longer_than` acts only on keys nobody read or wrote for that long
    (`OBJECT IDLETIME`, which does not count as an access; it is unavailable under an LFU
    `maxmemory-policy`). A pattern of wildcards alone is refused. `preset: reset` deletes
    string counters matching the pattern so that they start again from zero, as a daily
    API rate-limit reset does (`INCR` recreates them at 1).

    The cursor is checkpointed after every batch, so an interrupted walk resumes where it was.
    Reports keys scanned, matched and deleted (or given a TTL) and `used_memory` before and
    after (UNLINK frees in the background, so the figure after can lag a little).

    A dry run walks the keys and counts what it would act on, with a sample of names, and
    changes nothing.
    """

    kind = "cache_cleanup"
    Params = CacheCleanupParams
    requires = (KeyCleanable,)
    mutating = True
    resumable = True
    default_timeout = timedelta(hours=1)

    def resume_identity(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json", exclude={"batch_size", "pause"})

    def run(self, ctx: RunContext) -> TaskResult:
        conn = ctx.connector
        assert isinstance(conn, KeyCleanable)
        p = self.params
        assert isinstance(p, CacheCleanupParams)
        state = (ctx.resumed_from or {}).get("data") or {}
        cursor = int(state.get("cursor", 0))
        counts: dict[str, int] = {k: int(state.get(k, 0)) for k in (
            "keys_scanned", "keys_matched", "keys_deleted", "keys_expired", "batches")}
        sample: list[str] = []
        idle = p.idle_longer_than.total_seconds() if p.idle_longer_than else None
        needs_ttl = p.only_without_ttl or p.action == "expire"
        memory_before = conn.memory_used()
        ctx.issued(f"SCAN {cursor} MATCH {p.pattern} COUNT {p.batch_size}"
                   + (f" TYPE {p.effective_type}" if p.effective_type else ""))
        first_batch, stopped, shutdown = counts["batches"], False, False
        while True:
            if ctx.cancelled:  # a time limit, Ctrl-C, SIGTERM: between batches
                if counts["batches"] == first_batch:
                    ctx.check_cancelled()  # nothing done yet: the run failed
                # what the batches deleted is gone: say so (the record is then a partial
                # failure, incomplete, and the next run goes on from the checkpoint)
                stopped = True
                break
            cursor, keys = conn.scan_keys(p.pattern, cursor, p.batch_size, p.effective_type)
            counts["keys_scanned"] += len(keys)
            chosen = keys
            if keys and (needs_ttl or idle is not None):
                chosen = [f.key for f in conn.key_facts(keys, idle is not None)
                          if _wanted(f, needs_ttl, idle)]
            if p.max_keys is not None:
                chosen = chosen[:max(p.max_keys - counts["keys_matched"], 0)]
            counts["keys_matched"] += len(chosen)
            sample += [k.decode(errors="replace") for k in chosen[:SAMPLE - len(sample)]]
            if chosen and not ctx.dry_run:
                if p.action == "delete":
                    counts["keys_deleted"] += conn.delete_keys(chosen)
                else:
                    assert p.ttl is not None
                    counts["keys_expired"] += conn.expire_keys(chosen,
                                                               int(p.ttl.total_seconds()))
            counts["batches"] += 1
            done = cursor == 0 or (p.max_keys is not None and counts["keys_matched"] >= p.max_keys)
            if not ctx.dry_run:
                try:
                    ctx.checkpoint("scan", 100.0 if done else 0.0, {"cursor": cursor, **counts})
                except StopRequested:  # a shutdown: report what was done, then stop here
                    shutdown = True
                    break
            ctx.progress(None, "scan", f"{counts['keys_scanned']:,} keys scanned, "
                                       f"{counts['keys_matched']:,} matched")
            if done:
                break
            ctx.cancelled_wait(p.pause.total_seconds())
        memory_after = conn.memory_used()
        metrics: Metrics = {**counts, "memory_before_bytes": memory_before,
                            "memory_after_bytes": memory_after,
                            "bytes_freed": 0 if ctx.dry_run
                            else max(memory_before - memory_after, 0)}
        message = self._message(ctx, counts, memory_before, memory_after)
        details: dict[str, Any] = {"sample": sample, "pattern": p.pattern}
        if shutdown:
            return stopped_early(message, metrics, details, at_checkpoint=ctx.stop_reason)
        if stopped:
            return stopped_early(f"{message}; stopped before the end of the walk, the rest is "
                                 "left for the next run", metrics, details)
        return TaskResult(message=message, metrics=metrics, details=details)

    def _message(self, ctx: RunContext, counts: dict[str, int], before: int,
                 after: int) -> str:
        p = self.params
        assert isinstance(p, CacheCleanupParams)
        what = f"{counts['keys_matched']:,} of {counts['keys_scanned']:,} keys scanned"
        if ctx.dry_run:
            verb = "would delete" if p.action == "delete" else (
                f"would give a TTL of {format_duration(p.ttl)} to" if p.ttl else "")
            return f"{verb} {what} matching {p.pattern!r}"
        done = (f"deleted {counts['keys_deleted']:,}" if p.action == "delete" else
                f"gave {counts['keys_expired']:,} keys a TTL of {format_duration(p.ttl)}"
                if p.ttl else "")
        return (f"{done} ({what} matched {p.pattern!r}); memory {human_bytes(before)} -> "
                f"{human_bytes(after)}")


def _wanted(facts: KeyFacts, needs_ttl: bool, idle: float | None) -> bool:
    if facts.ttl == -2:  # gone since the scan (expired or deleted by someone else)
        return False
    if needs_ttl and facts.ttl != -1:
        return False
    return idle is None or (facts.idle_seconds is not None and facts.idle_seconds >= idle)
