"""MySQL/MariaDB replication state: this server's replication channels (when it is a replica),
for health, stats and DR drills, and the replicas registered with it (when it is a primary)."""

from __future__ import annotations

from typing import Any

from wellkept.connector import ReplicaState, ReplicationStatus


def _rows(cur: Any, *statements: str) -> list[dict[str, Any]]:
    """The first statement this server understands (MariaDB and MySQL 8 spell them apart)."""
    for i, statement in enumerate(statements):
        try:
            cur.execute(statement)
        except Exception:
            if i == len(statements) - 1:
                raise
            continue
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return []


def _get(row: dict[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if n in row), None)


def _link(row: dict[str, Any]) -> ReplicaState:
    io = str(_get(row, "Slave_IO_Running", "Replica_IO_Running") or "No")
    sql = str(_get(row, "Slave_SQL_Running", "Replica_SQL_Running") or "No")
    lag = _get(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
    host = _get(row, "Master_Host", "Source_Host")
    port = _get(row, "Master_Port", "Source_Port")
    error = (_get(row, "Last_SQL_Error") or _get(row, "Last_IO_Error")
             or _get(row, "Last_Error") or "")
    return ReplicaState(
        name=f"{host}:{port}" + (f" ({row['Connection_name']})"
                                 if row.get("Connection_name") else ""),
        state=f"io={io} sql={sql}", connected=io == "Yes" and sql == "Yes",
        # the server's NULL while a thread is stopped means "unknown", and stays None
        lag_seconds=None if lag is None else float(lag),
        details={"last_error": error} if error else {})


def links(conn: Any) -> list[ReplicaState]:
    """This server's own replication channels: none unless it is a replica."""
    with conn.cursor() as cur:
        return [_link(row) for row in _rows(cur, "SHOW ALL SLAVES STATUS",
                                            "SHOW REPLICA STATUS")]


def summary(found: list[ReplicaState]) -> dict[str, Any]:
    """A replica's figures: ``replicating`` (every channel's two threads running), the lag
    (the largest channel's; None, unknown, while any channel is not replicating: a stopped
    applier is not "0 s behind"), and ``problem``, saying why it is not replicating."""
    if not found:
        return {"role": "standalone", "replicating": None, "lag_seconds": None,
                "problem": None, "channels": []}
    stopped = [link for link in found if not link.connected]
    lags = [link.lag_seconds for link in found]
    problem = None
    if stopped:
        problem = "; ".join(
            f"{link.name} {link.state}"
            + (f": {link.details['last_error']}" if link.details.get("last_error") else "")
            for link in stopped)
    return {"role": "replica", "replicating": not stopped,
            "lag_seconds": None if stopped or None in lags
            else max(v for v in lags if v is not None),
            "problem": problem, "channels": [link.describe() for link in found]}


def status(conn: Any) -> ReplicationStatus:
    channels = links(conn)
    with conn.cursor() as cur:
        hosts = _rows(cur, "SHOW SLAVE HOSTS", "SHOW REPLICAS")
    if channels:
        worst = min(channels, key=lambda link: (link.connected, -(link.lag_seconds or 0)))
        return ReplicationStatus(role="replica", upstream=worst,
                                 replicas=[link for link in channels if link is not worst])
    replicas = [ReplicaState(name=f"{_get(h, 'Host')}:{_get(h, 'Port')}", state="registered",
                             connected=True, details={"server_id": _get(h, "Server_id")})
                for h in hosts]
    return ReplicationStatus(role="primary" if replicas else "standalone", replicas=replicas)
