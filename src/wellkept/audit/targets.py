"""The targets as the network and the databases see them: TLS to machines elsewhere, and
login roles with more privileges than maintenance needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from wellkept.connector import Connector, Finding, RoleAuditable
from wellkept.errors import ConnectorError, TaskError
from wellkept.redact import redact


def transport(name: str, connector: Connector) -> Iterator[Finding]:
    where = connector.transport()
    if where is None or where.local or where.tls:
        return
    yield Finding("plaintext_network", "warning", name,
                  f"target {name} reaches {where.host}, another machine, without TLS "
                  f"({where.how}); its password and data cross the network in clear",
                  {"host": where.host, "how": where.how, "url": connector.settings.redacted_url})


def state_transport(url: str) -> Iterator[Finding]:
    """The state store, when it is a PostgreSQL server on another machine reached without
    TLS: wellkept's history, checkpoints and leases, and its password, cross the network."""
    from wellkept.connectors import pg_roles

    if urlsplit(url).scheme.lower().split("+")[0] not in ("postgresql", "postgres"):
        return
    where = pg_roles.transport(url)
    if where.local or where.tls:
        return
    yield Finding("plaintext_network", "warning", "state",
                  f"the state store reaches {where.host}, another machine, without TLS "
                  f"({where.how}); its password and wellkept's history cross the network in "
                  "clear", {"host": where.host, "how": where.how, "url": redact(url)})


def roles(name: str, connector: Connector) -> Iterator[Finding]:
    if not isinstance(connector, RoleAuditable):
        return
    try:
        audit = connector.role_audit()
    except (ConnectorError, TaskError) as exc:
        yield Finding("role", "info", name, f"target {name}: the login role could not be "
                      f"checked: {exc}", {})
        return
    if audit.excess:
        evidence: dict[str, Any] = {"role": audit.role, "excess": audit.excess,
                                    "memberships": audit.memberships, **audit.details}
        yield Finding("role", "warning", name,
                      f"target {name} logs in as {audit.role}, which has "
                      f"{', '.join(audit.excess)}; {audit.advice}", evidence)
