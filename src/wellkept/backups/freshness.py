"""How old is the newest backup that is known to restore? (the recovery point, against an RPO)

A backup counts only once it has been verified, to at least the tier asked for: a backup nobody
has checked does not move the recovery point. The check reads the catalog only, so it costs
nothing on the target and works for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from wellkept.backups import catalog
from wellkept.backups.verify import TIERS
from wellkept.durations import format_duration
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z
from wellkept.units import human_age

#: the RPO and tier of the ``backup_freshness`` kind, and of a target no instance of it names
DEFAULT_RPO = timedelta(days=1)
DEFAULT_TIER: Final = "checksum"


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
              tier: str = DEFAULT_TIER, task: str | None = None) -> Freshness:
    """Is the newest backup of ``target`` verified to ``tier`` younger than ``rpo``? (Two
    rows read from the catalog, whatever its size.)"""
    verified, newest = catalog.newest(store, target, verified_to=TIERS[TIERS.index(tier):],
                                      task=task)
    if verified is None:
        why = (f"no backup of {target} has been verified (to {tier} or better)" if newest
               else f"no backup of {target} in the catalog")
        if newest is not None and newest.verify_status == "failed":
            why += f"; the newest, {newest.id}, failed verification: {newest.verify_message}"
        return Freshness(target, False, why, rpo, None, newest)
    age = now - verified.manifest.created
    old, limit = human_age(age.total_seconds()), format_duration(rpo)
    if age > rpo:
        why = (f"the newest verified backup of {target}, {verified.id}, is {old} old, older "
               f"than the RPO of {limit}")
        if newest is not None and newest.id != verified.id:
            why += (f"; newer {newest.id} is " + ("unverified" if newest.verify_status is None
                                                  else f"{newest.verify_status} verification"))
        return Freshness(target, False, why, rpo, verified, newest, age)
    return Freshness(target, True, f"{verified.id} is {old} old, within the RPO of {limit} "
                     f"(verified: {verified.verify_tier})",
                     rpo, verified, newest, age)
