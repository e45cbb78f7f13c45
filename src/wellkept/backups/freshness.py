"""How old is the newest backup that is known to restore? (the recovery point, against an RPO)

A backup counts only once it has been verified, to at least the tier asked for: a backup nobody
has checked does not move the recovery point. The check reads the catalog only, so it costs
nothing on the target and works for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wellkept.backups import catalog
from wellkept.backups.verify import TIERS
from wellkept.durations import format_duration
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z
from wellkept.units import human_age


@dataclass(frozen=True)
class Freshness:
    """The answer for one target: fresh or not, why, and the backups it looked at."""

    target: str
    fresh: bool
    reason: str
    rpo: timedelta
    newest_verified: catalog.Entry | None = None
    newest: catalog.Entry | None = None
    age: timedelta | None = None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "fresh": self.fresh,
                               "rpo_seconds": self.rpo.total_seconds()}
        if self.age is not None:
            out["age_seconds"] = round(self.age.total_seconds(), 3)
        for key, entry in (("newest_verified", self.newest_verified), ("newest", self.newest)):
            if entry is not None:
                out[key] = {"id": entry.id, "created_at": entry.manifest.finished_at,
                            "verified_at": iso_z(entry.verified_at),
                            "verify_tier": entry.verify_tier,
                            "verify_status": entry.verify_status}
        return out


def passes(entry: catalog.Entry, tier: str) -> bool:
    """Verified, and to at least ``tier`` (checksum < readable < restore)."""
    return (entry.verified and entry.verify_tier in TIERS
            and TIERS.index(entry.verify_tier) >= TIERS.index(tier))


def freshness(store: HistoryStore, target: str, rpo: timedelta, now: datetime, *,
              tier: str = "checksum", task: str | None = None) -> Freshness:
    """Is the newest backup of ``target`` verified to ``tier`` younger than ``rpo``?"""
    found = catalog.entries(store, target, task=task)
    newest = found[0] if found else None
    verified = next((e for e in found if passes(e, tier)), None)
    if verified is None:
        why = (f"no backup of {target} has been verified (to {tier} or better)" if found
               else f"no backup of {target} in the catalog")
        if newest is not None and newest.verify_status == "failed":
            why += f"; the newest, {newest.id}, failed verification: {newest.verify_message}"
        return Freshness(target, False, why, rpo, None, newest)
    age = now - verified.manifest.created
    old, limit = human_age(age.total_seconds()), format_duration(rpo)
    if age > rpo:
        why = (f"the newest verified backup of {target}, {verified.id}, is {old} old, older "
               f"than the RPO of {limit}")
        if newest is not None and newest is not verified:
            why += (f"; newer {newest.id} is " + ("unverified" if newest.verify_status is None
                                                  else f"{newest.verify_status} verification"))
        return Freshness(target, False, why, rpo, verified, newest, age)
    return Freshness(target, True, f"{verified.id} is {old} old, within the RPO of {limit} "
                     f"(verified: {verified.verify_tier})",
                     rpo, verified, newest, age)
