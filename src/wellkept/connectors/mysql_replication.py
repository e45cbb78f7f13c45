"""MySQL/MariaDB replication state, for DR drills: this server's replication channels (when it
is a replica) and the replicas registered with it (when it is a primary)."""

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


def status(conn: Any) -> ReplicationStatus:
    with conn.cursor() as cur:
        channels = _rows(cur, "SHOW ALL SLAVES STATUS", "SHOW REPLICA STATUS")
        hosts = _rows(cur, "SHOW SLAVE HOSTS", "SHOW REPLICAS")
    if channels:
        links = []
        for row in channels:
            io = str(_get(row, "Slave_IO_Running", "Replica_IO_Running") or "No")
            sql = str(_get(row, "Slave_SQL_Running", "Replica_SQL_Running") or "No")
            lag = _get(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
            host = _get(row, "Master_Host", "Source_Host")
            port = _get(row, "Master_Port", "Source_Port")
            error = _get(row, "Last_Error", "Last_SQL_Error") or ""
            links.append(ReplicaState(
                name=f"{host}:{port}" + (f" ({row['Connection_name']})"
                                         if row.get("Connection_name") else ""),
                state=f"io={io} sql={sql}", connected=io == "Yes" and sql == "Yes",
                lag_seconds=None if lag is None else float(lag),
                details={"last_error": error} if error else {}))
        worst = min(links, key=lambda link: (link.connected, -(link.lag_seconds or 0)))
        return ReplicationStatus(role="replica", upstream=worst,
                                 replicas=[link for link in links if link is not worst])
    replicas = [ReplicaState(name=f"{_get(h, 'Host')}:{_get(h, 'Port')}", state="registered",
                             connected=True, details={"server_id": _get(h, "Server_id")})
                for h in hosts]
    return ReplicationStatus(role="primary" if replicas else "standalone", replicas=replicas)
