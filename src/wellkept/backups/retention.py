"""Which backups to keep: ``keep_last``, ``keep_days`` and ``minimum_redundancy``.

Rules (as pgBackRest and Barman apply them):
- only verified backups count toward the policy, and nothing is pruned unless the newest
  backup is verified (Ola Hallengren's AFTER_BACKUP), so a run of failed backups never
  thins out the last good ones;
- ``keep_last: N`` keeps the N newest verified backups;
- ``keep_days: D`` keeps every backup of the last D days, plus the newest one older than
  that, so the whole window can still be restored;
- ``minimum_redundancy: M`` never leaves fewer than M verified backups, whatever the rest say;
- a backup is kept when any rule keeps it. Unverified backups older than the newest verified
  one are pruned with the rest; newer ones (perhaps still being verified) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from wellkept.backups.catalog import Entry


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    keep_days: timedelta | None = None
    minimum_redundancy: int = 1

    @property
    def empty(self) -> bool:
        return self.keep_last is None and self.keep_days is None


@dataclass(frozen=True)
class Decision:
    entry: Entry
    keep: bool
    reason: str


def plan(entries: list[Entry], policy: Policy, now: datetime) -> list[Decision]:
    """A decision for every entry (any order in; newest first out)."""
    ordered = sorted(entries, key=lambda e: (e.manifest.created, e.id), reverse=True)
    if policy.empty:
        return [Decision(e, True, "no retention policy") for e in ordered]
    if not ordered or not ordered[0].verified:
        return [Decision(e, True, "the newest backup is not verified yet") for e in ordered]
    verified = [e for e in ordered if e.verified]
    reasons: dict[str, str] = {}
    for e in verified[:max(policy.minimum_redundancy, 0)]:
        reasons.setdefault(e.id, f"minimum_redundancy {policy.minimum_redundancy}")
    if policy.keep_last is not None:
        for e in verified[:policy.keep_last]:
            reasons.setdefault(e.id, f"one of the newest {policy.keep_last}")
    if policy.keep_days is not None:
        horizon = now - policy.keep_days
        for e in verified:
            if e.manifest.created >= horizon:
                reasons.setdefault(e.id, "inside keep_days")
        older = [e for e in verified if e.manifest.created < horizon]
        if older:  # the base of the window: restores to its start need it
            reasons.setdefault(older[0].id, "the newest backup older than keep_days")
    newest_verified = verified[0].manifest.created
    out = []
    for e in ordered:
        if e.id in reasons:
            out.append(Decision(e, True, reasons[e.id]))
        elif not e.verified and e.manifest.created > newest_verified:
            out.append(Decision(e, True, "newer than the newest verified backup"))
        else:
            out.append(Decision(e, False, "not verified" if not e.verified
                                else "outside the retention policy"))
    return out
