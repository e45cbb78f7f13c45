"""PostgreSQL replication state, for DR drills: a standby's WAL receiver and replay lag, a
primary's streaming replicas and the replication slots nobody is reading."""

from __future__ import annotations

from typing import Any

from wellkept.connector import ReplicaState, ReplicationStatus

# On a standby: the receiver (NULL row when it is not connected) and how far replay is
# behind. A standby that has replayed everything it received is not lagging, however old
# its last replayed transaction is (an idle primary sends nothing new).
_STANDBY = """
SELECT r.status, r.sender_host, r.sender_port, r.slot_name,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
            THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag
FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true
"""

_REPLICAS = """
SELECT application_name, host(client_addr), state, sync_state,
       extract(epoch FROM coalesce(replay_lag, write_lag, flush_lag)) AS lag,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS behind_bytes
FROM pg_stat_replication ORDER BY application_name, client_addr
"""

_IDLE_SLOTS = """
SELECT slot_name, slot_type, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) AS held_bytes
FROM pg_replication_slots WHERE NOT active ORDER BY slot_name
"""


def status(conn: Any) -> ReplicationStatus:
    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        state, host, port, slot, lag = conn.execute(_STANDBY).fetchone()
        upstream = ReplicaState(
            name=f"{host}:{port}" if host else "(no primary connected)",
            state=state or "disconnected", connected=state == "streaming",
            lag_seconds=None if lag is None else round(float(lag), 3),
            details={"slot": slot} if slot else {})
        return ReplicationStatus(role="replica", upstream=upstream)
    replicas = [
        ReplicaState(name=app or addr or "(local)", state=state, connected=state == "streaming",
                     lag_seconds=None if lag is None else round(float(lag), 3),
                     details={"client_addr": addr, "sync_state": sync,
                              "behind_bytes": int(behind or 0)})
        for app, addr, state, sync, lag, behind in conn.execute(_REPLICAS).fetchall()]
    replicas += [
        ReplicaState(name=f"slot {name}", state="disconnected", connected=False,
                     details={"slot_type": kind, "held_bytes": int(held or 0)})
        for name, kind, held in conn.execute(_IDLE_SLOTS).fetchall()]
    return ReplicationStatus(role="primary" if replicas else "standalone", replicas=replicas)
