"""Coordinators, the scheduling leader's lease, requests made to a running coordinator, and
the emergency triggers' cooldowns.

Each ``wellkept serve`` process registers a row and renews it (its heartbeat). One of them
holds the lease named ``scheduler`` and is the only one that schedules. A lease is taken by
compare-and-set: an UPDATE that only matches when the lease is free, expired or already ours,
or an INSERT that only one process can win (the primary key). Times come from the callers'
clocks; on machines with skewed clocks two leaders may overlap for the skew, which the
exactly-once slot claims (``history.schedules``) make harmless.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wellkept.history.schema import coordinators, emergency_state, leases, requests
from wellkept.history.store import HistoryStore
from wellkept.liveness import host_id

LEADER = "scheduler"


@dataclass(frozen=True)
class CoordinatorRow:
    coordinator_id: str
    host: str
    pid: int
    host_id: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    last_tick_at: datetime | None
    state: str
    stopped_at: datetime | None

    def alive(self, now: datetime, stale_after: timedelta) -> bool:
        return self.state != "stopped" and now - self.heartbeat_at <= stale_after

    def to_json(self) -> dict[str, Any]:
        from wellkept.records import iso_z

        return {"id": self.coordinator_id, "host": self.host, "pid": self.pid,
                "version": self.version, "state": self.state,
                "started_at": iso_z(self.started_at), "heartbeat_at": iso_z(self.heartbeat_at),
                "last_tick_at": iso_z(self.last_tick_at), "stopped_at": iso_z(self.stopped_at)}


def register(store: HistoryStore, coordinator_id: str, now: datetime, version: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(coordinators.insert().values(
            coordinator_id=coordinator_id, host=socket.gethostname(), pid=os.getpid(),
            host_id=host_id(), version=version, started_at=now, heartbeat_at=now,
            state="running"))


def heartbeat(store: HistoryStore, coordinator_id: str, now: datetime, *,
              ticked: bool = False, state: str | None = None) -> None:
    values: dict[str, Any] = {"heartbeat_at": now}
    if ticked:
        values["last_tick_at"] = now
    if state:
        values["state"] = state
        if state == "stopped":
            values["stopped_at"] = now
    with store.engine.begin() as conn:
        conn.execute(coordinators.update().where(
            coordinators.c.coordinator_id == coordinator_id).values(**values))


def list_coordinators(store: HistoryStore, *, limit: int = 20) -> list[CoordinatorRow]:
    query = sa.select(coordinators).order_by(coordinators.c.heartbeat_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [CoordinatorRow(**dict(r)) for r in conn.execute(query).mappings()]


def last_tick(store: HistoryStore) -> datetime | None:
    """When any coordinator's scheduler last ticked (the scheduler's self-heartbeat)."""
    with store.engine.connect() as conn:
        value: datetime | None = conn.execute(
            sa.select(sa.func.max(coordinators.c.last_tick_at))).scalar()
    if value is not None and value.tzinfo is None:  # aggregates bypass the column type
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


# --- leases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    holder_host: str
    holder_pid: int
    holder_host_id: str
    acquired_at: datetime
    lease_until: datetime


def get_lease(store: HistoryStore, name: str = LEADER) -> Lease | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().first()
    return Lease(**dict(row)) if row else None


def acquire_lease(store: HistoryStore, holder: str, now: datetime, ttl: timedelta, *,
                  name: str = LEADER, steal_from: str | None = None) -> bool:
    """Take or renew the lease; True when ``holder`` holds it until ``now + ttl``.

    ``steal_from`` names a holder known to be dead (a process of this host that no longer
    exists), whose lease is taken at once instead of waiting for it to expire."""
    until = now + ttl
    free = sa.or_(leases.c.holder == holder, leases.c.lease_until < now)
    if steal_from:
        free = sa.or_(free, leases.c.holder == steal_from)
    with store.engine.begin() as conn:
        current = conn.execute(sa.select(leases.c.holder).where(leases.c.name == name)).first()
        if current is not None:
            values: dict[str, Any] = {"holder": holder, "holder_host": socket.gethostname(),
                                      "holder_pid": os.getpid(), "holder_host_id": host_id(),
                                      "lease_until": until}
            if current[0] != holder:
                values["acquired_at"] = now
            done = conn.execute(leases.update().where(leases.c.name == name, free)
                                .values(**values))
            return done.rowcount == 1
    try:
        with store.engine.begin() as conn:
            conn.execute(leases.insert().values(
                name=name, holder=holder, holder_host=socket.gethostname(),
                holder_pid=os.getpid(), holder_host_id=host_id(), acquired_at=now,
                lease_until=until))
    except sa.exc.IntegrityError:
        return False  # another process inserted it first
    return True


def release_lease(store: HistoryStore, holder: str, now: datetime, *,
                  name: str = LEADER) -> None:
    """Give the lease up at once (a clean shutdown), so a standby takes over without waiting."""
    with store.engine.begin() as conn:
        conn.execute(leases.update().where(leases.c.name == name, leases.c.holder == holder)
                     .values(lease_until=now - timedelta(seconds=1)))


# --- requests -----------------------------------------------------------------------------------


def add_request(store: HistoryStore, kind: str, name: str, trigger: str, now: datetime,
                requested_by: str) -> int:
    with store.engine.begin() as conn:
        result = conn.execute(requests.insert().values(
            kind=kind, name=name, trigger=trigger, requested_at=now,
            requested_by=requested_by, run_ids=[]))
        key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def claim_requests(store: HistoryStore, coordinator_id: str, now: datetime,
                   limit: int = 20) -> list[dict[str, Any]]:
    """Pending requests, each claimed by compare-and-set (only one coordinator gets it). A
    request that ended unclaimed (withdrawn) is not pending."""
    with store.engine.connect() as conn:
        pending = [dict(r) for r in conn.execute(
            sa.select(requests).where(requests.c.claimed_by.is_(None),
                                      requests.c.finished_at.is_(None))
            .order_by(requests.c.id).limit(limit)).mappings()]
    claimed = []
    for row in pending:
        with store.engine.begin() as conn:
            done = conn.execute(requests.update().where(
                requests.c.id == row["id"], requests.c.claimed_by.is_(None),
                requests.c.finished_at.is_(None)).values(
                claimed_by=coordinator_id, claimed_at=now))
        if done.rowcount == 1:
            claimed.append(row)
    return claimed


def unclaim_request(store: HistoryStore, request_id: int, coordinator_id: str) -> None:
    """Hand a claimed request back (a shutdown came before it started)."""
    with store.engine.begin() as conn:
        conn.execute(requests.update().where(
            requests.c.id == request_id, requests.c.claimed_by == coordinator_id,
            requests.c.finished_at.is_(None)).values(claimed_by=None, claimed_at=None))


def orphan_requests(store: HistoryStore, coordinator_id: str, now: datetime) -> int:
    """Requests a gone coordinator had claimed and not finished: they end as ``orphaned``
    (their interrupted runs are recovered from the recovery queue)."""
    with store.engine.begin() as conn:
        return conn.execute(requests.update().where(
            requests.c.claimed_by == coordinator_id, requests.c.finished_at.is_(None))
            .values(finished_at=now, status="orphaned")).rowcount


def get_coordinator(store: HistoryStore, coordinator_id: str) -> CoordinatorRow | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(coordinators).where(
            coordinators.c.coordinator_id == coordinator_id)).mappings().first()
    return CoordinatorRow(**dict(row)) if row else None


def finish_request(store: HistoryStore, request_id: int, now: datetime, status: str,
                   run_ids: list[str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(requests.update().where(requests.c.id == request_id).values(
            finished_at=now, status=status, run_ids=run_ids))


def withdraw_request(store: HistoryStore, request_id: int, now: datetime) -> bool:
    """End a request that no coordinator has claimed yet as ``withdrawn`` (compare-and-set:
    False when one claimed it meanwhile, or it had ended)."""
    with store.engine.begin() as conn:
        return conn.execute(requests.update().where(
            requests.c.id == request_id, requests.c.claimed_by.is_(None),
            requests.c.finished_at.is_(None)).values(finished_at=now, status="withdrawn")
        ).rowcount == 1


def get_request(store: HistoryStore, request_id: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).mappings() \
            .first()
    return dict(row) if row else None


# --- emergency triggers -------------------------------------------------------------------------


def claim_emergency(store: HistoryStore, name: str, now: datetime, cooldown: timedelta,
                    figures: dict[str, float]) -> bool:
    """Fire the trigger unless it fired within ``cooldown`` (compare-and-set: across
    coordinators and restarts, it fires at most once per cooldown)."""
    quiet = sa.or_(emergency_state.c.last_fired_at.is_(None),
                   emergency_state.c.last_fired_at <= now - cooldown)
    with store.engine.begin() as conn:
        done = conn.execute(emergency_state.update().where(
            emergency_state.c.name == name, quiet).values(
            last_fired_at=now, fired_count=emergency_state.c.fired_count + 1,
            last_figures=figures, last_run_ids=[]))
        if done.rowcount == 1:
            return True
        exists = conn.execute(sa.select(emergency_state.c.name).where(
            emergency_state.c.name == name)).first()
    if exists:
        return False
    try:
        with store.engine.begin() as conn:
            conn.execute(emergency_state.insert().values(
                name=name, last_fired_at=now, fired_count=1, last_figures=figures,
                last_run_ids=[]))
    except sa.exc.IntegrityError:
        return False
    return True


def emergency_fired(store: HistoryStore, name: str, run_ids: list[str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(emergency_state.update().where(emergency_state.c.name == name)
                     .values(last_run_ids=run_ids))


def emergency_states(store: HistoryStore) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {r["name"]: dict(r) for r in conn.execute(sa.select(emergency_state)).mappings()}
