"""PostgreSQL: the privileges of wellkept's own login role, and whether its URL demands TLS."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from wellkept.connector import RoleAudit, Transport, is_local_host

#: sslmode values under which libpq refuses a connection without TLS
TLS_MODES = ("require", "verify-ca", "verify-full")

_ROLE = """SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls,
       ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1),
       current_setting('server_version_num')::int
  FROM pg_roles r WHERE r.rolname = current_user"""


def audit(conn: Any) -> RoleAudit:
    """Superuser (and CREATEROLE, REPLICATION, BYPASSRLS) are more than maintenance needs:
    pg_monitor reads every statistics view, and pg_maintain (PostgreSQL 17+) may VACUUM,
    ANALYZE, REINDEX, REFRESH and CLUSTER every table."""
    row = conn.execute(_ROLE).fetchone()
    role, superuser, createrole, replication, bypassrls, members, version = row
    excess = [name for name, held in (("SUPERUSER", superuser), ("CREATEROLE", createrole),
                                      ("REPLICATION", replication), ("BYPASSRLS", bypassrls))
              if held]
    grants = ["pg_monitor"] + (["pg_maintain"] if int(version) >= 170000 else [])
    missing = [g for g in grants if g not in members]
    advice = (f"log in as a role without {', '.join(excess)}, granted "
              f"{' and '.join(grants)}" + ("" if int(version) >= 170000 else
                                            " (and owning the tables it maintains: "
                                            "pg_maintain needs PostgreSQL 17)")
              if excess else "")
    return RoleAudit(role=str(role), superuser=bool(superuser), memberships=list(members),
                     excess=excess, advice=advice,
                     details={"server_version_num": int(version), "missing_grants": missing})


def transport(url: str) -> Transport:
    """The host (``host=`` in the query string wins, as in libpq) and the sslmode; libpq's
    default ``prefer`` falls back to plain text, so only require/verify-* count as TLS."""
    u = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(u.query).items()}
    host = query.get("host") or u.hostname or "localhost"
    mode = query.get("sslmode", "prefer")
    return Transport(host=host, local=is_local_host(host), tls=mode in TLS_MODES,
                     how=f"sslmode={mode}")
