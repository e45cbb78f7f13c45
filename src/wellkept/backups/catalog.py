"""The backups catalog in the history store (``wk_backups``).

It is an index, not the truth: the manifests in storage are. ``rebuild`` re-reads them, so a
lost state store costs nothing but the verification results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from wellkept.backups.manifest import MANIFEST_SUFFIX, Manifest
from wellkept.backups.storage import Storage
from wellkept.history.schema import backups
from wellkept.history.store import HistoryStore


@dataclass(frozen=True)
class Entry:
    """A catalogued backup: its manifest, where it is, and what verification found."""

    manifest: Manifest
    storage: str
    verified_at: datetime | None = None
    verify_tier: str | None = None
    verify_status: str | None = None
    verify_message: str | None = None
    restore_seconds: float | None = None
    pruned_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def verified(self) -> bool:
        return self.verify_status == "passed"

    def to_json(self) -> dict[str, Any]:
        from wellkept.records import iso_z

        m = self.manifest
        return {"id": m.id, "task": m.task, "target": m.target, "engine": m.engine,
                "format": m.format, "created_at": m.finished_at, "storage": self.storage,
                "artifact": m.artifact, "stored_bytes": m.stored_bytes, "sha256": m.sha256,
                "compression": m.compression, "encrypted": m.encrypted,
                "verified_at": iso_z(self.verified_at), "verify_tier": self.verify_tier,
                "verify_status": self.verify_status, "verify_message": self.verify_message,
                "restore_seconds": self.restore_seconds, "pruned_at": iso_z(self.pruned_at)}


def record(store: HistoryStore, manifest: Manifest, storage: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(backups.delete().where(backups.c.backup_id == manifest.id))
        conn.execute(backups.insert().values(
            backup_id=manifest.id, task=manifest.task, target=manifest.target,
            engine=manifest.engine, format=manifest.format, storage=storage,
            artifact=manifest.artifact, created_at=manifest.created,
            stored_bytes=manifest.stored_bytes, sha256=manifest.sha256,
            manifest=json.loads(manifest.to_json())))


def _entry(row: Any) -> Entry:
    data = row["manifest"]
    manifest = Manifest.from_json(json.dumps(data) if not isinstance(data, str) else data)
    return Entry(manifest=manifest, storage=row["storage"], verified_at=row["verified_at"],
                 verify_tier=row["verify_tier"], verify_status=row["verify_status"],
                 verify_message=row["verify_message"], restore_seconds=row["restore_seconds"],
                 pruned_at=row["pruned_at"])


def get(store: HistoryStore, backup_id: str) -> Entry | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(backups).where(backups.c.backup_id == backup_id)
                           ).mappings().first()
    return _entry(row) if row else None


def entries(store: HistoryStore, target: str | None = None, *, task: str | None = None,
            include_pruned: bool = False) -> list[Entry]:
    """Newest first."""
    query = sa.select(backups).order_by(backups.c.created_at.desc(), backups.c.backup_id.desc())
    if target:
        query = query.where(backups.c.target == target)
    if task:
        query = query.where(backups.c.task == task)
    if not include_pruned:
        query = query.where(backups.c.pruned_at.is_(None))
    with store.engine.connect() as conn:
        return [_entry(r) for r in conn.execute(query).mappings()]


def newest(store: HistoryStore, target: str, *, verified_to: tuple[str, ...],
           task: str | None = None) -> tuple[Entry | None, Entry | None]:
    """The newest backup of ``target`` that passed a verification of one of the tiers
    ``verified_to``, and the newest backup of all (pruned ones left out; of ``task`` only,
    when given).

    One statement of two ``LIMIT 1`` probes down the (target, created_at) index: it reads a
    row or two however long the catalog's history is, so it can run after every run and every
    health check (the alerts judge freshness that often)."""
    def probe(which: str, *where: Any) -> Any:
        query = (sa.select(sa.literal(which).label("which"), *backups.c)
                 .where(backups.c.target == target, backups.c.pruned_at.is_(None), *where)
                 .order_by(backups.c.created_at.desc(), backups.c.backup_id.desc()).limit(1))
        if task:
            query = query.where(backups.c.task == task)
        return sa.select(query.subquery())

    query = sa.union_all(probe("verified", backups.c.verify_status == "passed",
                               backups.c.verify_tier.in_(verified_to)), probe("newest"))
    with store.engine.connect() as conn:
        found = {row["which"]: _entry(row) for row in conn.execute(query).mappings()}
    return found.get("verified"), found.get("newest")


#: the verification tiers, each proving more than the ones before (as verify.TIERS)
_TIER_ORDER = ("checksum", "readable", "restore")


def _rank(tier: str | None) -> int:
    return _TIER_ORDER.index(tier) if tier in _TIER_ORDER else -1


def mark_verified(store: HistoryStore, backup_id: str, tier: str, passed: bool, message: str,
                  restore_seconds: float | None = None) -> None:
    """Record a verification on the backup. A passed one of a lower tier than a passed one
    already recorded changes nothing: a checksum check of a restore-verified backup proves
    less than is known (the restore tier includes the checksum), and must not cost it its
    tier nor its measured restore time. A failed one always replaces the record."""
    with store.engine.begin() as conn:
        if passed:
            known = conn.execute(sa.select(backups.c.verify_status, backups.c.verify_tier)
                                 .where(backups.c.backup_id == backup_id)).first()
            if known is not None and known[0] == "passed" and _rank(known[1]) > _rank(tier):
                return
        conn.execute(backups.update().where(backups.c.backup_id == backup_id).values(
            verified_at=datetime.now(UTC), verify_tier=tier,
            verify_status="passed" if passed else "failed", verify_message=message,
            restore_seconds=restore_seconds))


def mark_pruned(store: HistoryStore, backup_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(backups.update().where(backups.c.backup_id == backup_id).values(
            pruned_at=datetime.now(UTC)))


def rebuild(store: HistoryStore, storage: Storage, prefix: str = "") -> list[str]:
    """Catalogue every manifest found in ``storage`` (under ``prefix``) that the catalog
    lacks; returns their ids. Verification results of known backups are kept."""
    added = []
    for name in storage.list(prefix):
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            manifest = Manifest.from_json(storage.read_text(name))
        except (ValueError, TypeError):
            continue  # not one of ours
        if get(store, manifest.id) is None:
            record(store, manifest, storage.location)
            added.append(manifest.id)
    return added
