"""Log each target's change of state once, and keep its state in the store.

Seed 000's logs were flooded because every check logged every outage. Here a target going down
is a WARNING the first time it is seen down, and the checks after that say nothing above DEBUG
until it changes again (coming back is INFO). Being held by another process (``locked``) is
normal, so it is INFO. A connector that crashed is a bug: an ERROR with its traceback, every
time. The state lives in ``wk_target_status``, so "once" holds across processes (cron runs
`wellkept health` every few minutes) and across machines sharing a store.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from wellkept.history.schema import target_status
from wellkept.records import utcnow
from wellkept.redact import redact

if TYPE_CHECKING:
    from wellkept.history.store import HistoryStore

log = logging.getLogger("wellkept.health")


def note_transitions(store: HistoryStore, rows: dict[str, dict[str, Any]],
                     names: list[str]) -> dict[str, str]:
    """Record each target's status; log the changes; return the previous statuses."""
    now = utcnow()
    for name in names:  # bugs first: they are logged whatever the store says
        row = rows[name]
        if row.get("problem") == "bug":
            log.error("checking %s crashed: %s\n%s", name, row["error"],
                      row.get("traceback", ""))
    before: dict[str, str] = {}
    for attempt in (1, 2):
        try:
            before = _record(store, rows, names, now)
            break
        except (sa.exc.IntegrityError, _Raced) as exc:
            if attempt == 1:  # another check recorded a target meanwhile: read it again
                continue
            log.error("target states could not be recorded: %s", redact(str(exc)))
        except Exception as exc:  # without the store, say everything once per process
            log.error("target states could not be recorded: %s", redact(str(exc)))
            break
    for name in names:
        _log_change(name, before.get(name), rows[name])
    return before


def _record(store: HistoryStore, rows: dict[str, dict[str, Any]], names: list[str],
            now: Any) -> dict[str, str]:
    """Write each target's state in one transaction; the states it had before."""
    with store.engine.begin() as conn:
        before = {r.target: r.status for r in conn.execute(
            sa.select(target_status.c.target, target_status.c.status)
            .where(target_status.c.target.in_(names)))}
        for name in names:
            row = rows[name]
            values = {"status": row["status"], "checked_at": now,
                      "latency_ms": row.get("latency_ms"), "error": row.get("error")}
            if name not in before:
                conn.execute(target_status.insert().values(target=name, since=now, **values))
                continue
            if before[name] != row["status"]:
                values["since"] = now
            # only over the state read above: a check that changed it meanwhile has logged
            # that change, and this one must read it again rather than log it a second time
            done = conn.execute(target_status.update().where(
                target_status.c.target == name, target_status.c.status == before[name])
                .values(**values))
            if done.rowcount != 1:
                raise _Raced(f"{name}'s state changed while it was being recorded")
    return before


class _Raced(Exception):
    """Another check changed a target's state between this one's read and its write."""


def _log_change(name: str, previous: str | None, row: dict[str, Any]) -> None:
    status = row["status"]
    if status == previous or row.get("problem") == "bug":
        log.debug("%s is still %s", name, status)
        return
    if status == "down":
        log.warning("%s is down: %s", name, row.get("error"))
    elif status == "locked":
        pid = (row.get("details") or {}).get("holder_pid")
        log.info("%s is in use by another process%s (healthy)", name,
                 f" (PID {pid})" if pid else "")
    elif previous == "down":
        log.info("%s is %s again", name, status)
    else:
        log.debug("%s is %s", name, status)
