"""Verification in three tiers, each including the ones before it.

- ``checksum``: the stored bytes hash to the manifest's sha256 and size.
- ``readable``: decrypt and decompress the whole artifact (its size must match the manifest's
  raw size, which catches truncation), and have the engine's own tool list it
  (``pg_restore --list`` and the like).
- ``restore``: restore into a scratch database (a temporary database on the same server, or a
  temporary file), compare row counts per table with the manifest, run the smoke queries,
  record the restore time, and drop the scratch database. The checksum is
  computed on the same pass as the restore, so verifying costs one read of the artifact.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from wellkept.backups.artifact import CHUNK, open_artifact, sha256_of
from wellkept.backups.catalog import Entry
from wellkept.backups.storage import Storage
from wellkept.connector import Connector, Dumpable, DumpOptions
from wellkept.errors import TaskFailed

TIERS = ("checksum", "readable", "restore")


@dataclass
class Verification:
    tier: str
    passed: bool
    message: str
    restore_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class MeteredReader:
    """Counts (and, with ``hashed``, hashes) what a consumer reads through it."""

    def __init__(self, source: BinaryIO, hashed: bool = False) -> None:
        self._source = source
        self.sha256 = hashlib.sha256() if hashed else None
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if self.sha256 is not None:
            self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        assert self.sha256 is not None
        return self.sha256.hexdigest()


def check_stored(entry: Entry, sha256: str, size: int) -> None:
    m = entry.manifest
    if size != m.stored_bytes:
        raise TaskFailed(f"checksum: {m.artifact} has {size} bytes, the manifest says "
                         f"{m.stored_bytes}")
    if sha256 != m.sha256:
        raise TaskFailed(f"checksum: the sha256 of {m.artifact} does not match its manifest "
                         "(the file changed or is damaged)")


def _check_raw(entry: Entry, raw: int) -> None:
    if raw != entry.manifest.raw_bytes:
        raise TaskFailed(f"readable: the artifact holds {raw} bytes of dump, the manifest says "
                         f"{entry.manifest.raw_bytes} (truncated or damaged)")


def verify(entry: Entry, storage: Storage, tier: str, *, source: Connector,
           options: DumpOptions, identities: Callable[[], list[Any] | None],
           connect: Callable[[str], Connector], smoke_queries: list[str] = (),  # type: ignore[assignment]
           scratch: Connector | None = None) -> Verification:
    """Verify ``entry`` up to ``tier``; a failure is a Verification with passed=False.

    ``source`` is the backed-up target; the restore tier makes its scratch database through
    ``scratch`` (default: ``source``'s own server)."""
    m = entry.manifest
    # raised, not a finding: with no identity (or an unreadable one) at hand the check cannot
    # be made, which says nothing against the backup. A key that does not open it is one.
    keys = identities() if m.encrypted and tier != "checksum" else None
    try:
        if tier == "checksum":
            with storage.reader(m.artifact) as fh:
                check_stored(entry, *sha256_of(fh))
            return Verification(tier, True, f"sha256 and size match ({m.stored_bytes} bytes)")
        if tier == "readable":
            with storage.reader(m.artifact) as fh:
                hashing = MeteredReader(fh, hashed=True)
                raw = MeteredReader(open_artifact(hashing, m.compression, keys))  # type: ignore[arg-type]
                _consume(entry, hashing, raw, raw.drain)
            assert isinstance(source, Dumpable)
            with storage.reader(m.artifact) as fh:
                listing = source.list_dump(open_artifact(fh, m.compression, keys), m.format,
                                           options)
            return Verification(tier, True, f"readable: {len(listing)} entries listed",
                                details={"entries": len(listing), "sample": listing[:20]})
        if tier == "restore":
            return _restore_test(entry, storage, scratch or source, options, keys, connect,
                                 list(smoke_queries))
        raise TaskFailed(f"unknown verification tier {tier!r}; choose {', '.join(TIERS)}")
    except TaskFailed as exc:
        return Verification(tier, False, str(exc))


def restore_stream(entry: Entry, storage: Storage, dest: Connector, options: DumpOptions,
                   keys: list[Any] | None) -> None:
    """Restore ``entry`` into ``dest``, checking the stored bytes on the same pass."""
    m = entry.manifest
    assert isinstance(dest, Dumpable)
    with storage.reader(m.artifact) as fh:
        hashing = MeteredReader(fh, hashed=True)
        raw = MeteredReader(open_artifact(hashing, m.compression, keys))  # type: ignore[arg-type]

        def load() -> None:
            dest.restore(raw, m.format, options)  # type: ignore[arg-type]
            raw.drain()

        _consume(entry, hashing, raw, load)


def _consume(entry: Entry, hashing: MeteredReader, raw: MeteredReader,
             reader: Callable[[], None]) -> None:
    """Let ``reader`` consume the raw dump, then check the stored bytes' checksum and the raw
    size. When reading fails, a checksum mismatch is the likelier cause and the clearer
    thing to report, so it is checked first."""
    try:
        reader()
    except TaskFailed:
        hashing.drain()
        check_stored(entry, hashing.hexdigest(), hashing.bytes)
        raise
    hashing.drain()
    check_stored(entry, hashing.hexdigest(), hashing.bytes)
    _check_raw(entry, raw.bytes)


def compare_counts(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    problems = []
    for table, rows in sorted(expected.items()):
        got = found.get(table)
        if got is None:
            problems.append(f"{table}: missing after the restore")
        elif got != rows:
            problems.append(f"{table}: {got}, the manifest says {rows}")
    return problems


def _restore_test(entry: Entry, storage: Storage, source: Connector, options: DumpOptions,
                  keys: list[Any] | None, connect: Callable[[str], Connector],
                  smoke_queries: list[str]) -> Verification:
    m = entry.manifest
    assert isinstance(source, Dumpable)
    started = time.monotonic()
    with source.scratch() as url:
        dest = connect(url)
        try:
            restore_stream(entry, storage, dest, options, keys)
            seconds = time.monotonic() - started
            assert isinstance(dest, Dumpable)
            found = dest.content_counts()
            smoke = {}
            for query in smoke_queries:
                try:
                    smoke[query] = dest.smoke(query)
                except Exception as exc:  # the query's own error is the finding
                    raise TaskFailed(f"smoke query {query!r} failed: {exc}") from None
        finally:
            dest.close()
    problems = compare_counts(m.counts, found)
    details = {"tables": len(found), "rows": sum(found.values()), "smoke": smoke,
               "restore_seconds": round(seconds, 3)}
    if problems and m.counts_exact:
        return Verification("restore", False, "restore: counts differ: " + "; ".join(
            problems[:10]), seconds, details)
    if problems:  # counts taken outside the dump's snapshot: a busy source explains them
        details["count_differences"] = problems
    return Verification("restore", True, f"restored into a scratch database in "
                        f"{seconds:.1f}s; {source.describe_counts(found)} "
                        "match the manifest" + (" (approximately)" if problems else ""),
                        seconds, details)
