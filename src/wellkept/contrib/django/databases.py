"""``settings.DATABASES`` as wellkept targets: one target per alias, named like the alias.

Each alias's connection settings become a target URL for wellkept's own connectors (psycopg,
PyMySQL, sqlite3), which open their own sessions with their own timeouts; Django's connection
is never used for maintenance. The password is registered as a secret, so it is masked in every
output and log line, quoted or not.

The engine is read from ``ENGINE`` (Django's own backends and GeoDjango's), and for any other
backend from ``connections[alias].vendor``, which loads the backend without connecting. An
alias wellkept cannot maintain (another vendor, an in-memory SQLite database) is left out with
the reason, as are ``OPTIONS`` the connectors would not honour.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from wellkept.redact import register_secret

#: Django's backends (and GeoDjango's) and the connector that maintains each
ENGINES: dict[str, str] = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.postgresql_psycopg2": "postgresql",
    "django.contrib.gis.db.backends.postgis": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.contrib.gis.db.backends.mysql": "mysql",
    "django.db.backends.sqlite3": "sqlite",
    "django.contrib.gis.db.backends.spatialite": "sqlite",
}

#: libpq parameters of ``OPTIONS`` that the URL carries (to psycopg and to pg_dump alike);
#: ``options`` is not one: wellkept sets its own (lock_timeout, statement_timeout, TimeZone)
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword",
                 "sslnegotiation", "service", "passfile", "target_session_attrs", "gssencmode",
                 "channel_binding", "krbsrvname")


@dataclass(frozen=True)
class DatabaseTarget:
    """One alias of ``DATABASES`` as wellkept sees it."""

    alias: str
    #: postgresql, mysql or sqlite; "" when the engine is not one wellkept maintains
    vendor: str
    #: the target URL (with the password: print ``redact(url)``); "" when unusable
    url: str = ""
    #: the database's own name (a file name for SQLite), for reports
    name: str = ""
    #: why the alias is not a target, or None when it is one
    problem: str | None = None
    #: OPTIONS keys the target does not carry over (a warning, not an error)
    dropped_options: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.problem is None


def database_targets(databases: Mapping[str, Any], *,
                     vendor_of: Any = None) -> dict[str, DatabaseTarget]:
    """Every alias of ``DATABASES``, usable or not (``problem`` says why not)."""
    return {alias: database_target(alias, conf if isinstance(conf, Mapping) else {},
                                   vendor_of=vendor_of)
            for alias, conf in databases.items()}


def database_target(alias: str, conf: Mapping[str, Any], *,
                    vendor_of: Any = None) -> DatabaseTarget:
    engine = str(conf.get("ENGINE") or "")
    vendor = ENGINES.get(engine) or _vendor(alias, vendor_of)
    if vendor == "postgresql":
        return _postgresql(alias, conf)
    if vendor == "mysql":
        return _mysql(alias, conf)
    if vendor == "sqlite":
        return _sqlite(alias, conf)
    return DatabaseTarget(alias, "", problem=(
        f"its ENGINE {engine or '(none)'!r} is not one wellkept maintains (PostgreSQL, "
        "MySQL/MariaDB or SQLite)"))


def _vendor(alias: str, vendor_of: Any) -> str:
    """A third-party backend's vendor, from Django's connection wrapper (which loads the
    backend module but does not connect)."""
    if vendor_of is not None:
        return str(vendor_of(alias) or "")
    try:
        from django.db import connections

        return str(connections[alias].vendor)
    except Exception:  # a backend that cannot even load is not ours to diagnose
        return ""


def _credentials(conf: Mapping[str, Any]) -> str:
    user = str(conf.get("USER") or "")
    password = str(conf.get("PASSWORD") or "")
    if password:
        register_secret(password)
        register_secret(quote(password, safe=""))
    if not user and not password:
        return ""
    return quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"


def _netloc(host: str, port: Any) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return host + (f":{int(port)}" if str(port or "").strip() else "")


def _options(conf: Mapping[str, Any], keep: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    options = conf.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        return {}, []
    kept = {k: str(v) for k, v in options.items() if k in keep and v is not None}
    return kept, sorted(str(k) for k in options if k not in keep)


def _postgresql(alias: str, conf: Mapping[str, Any]) -> DatabaseTarget:
    name = str(conf.get("NAME") or "")
    query, dropped = _options(conf, LIBPQ_OPTIONS)
    if not name and "service" not in query:
        return DatabaseTarget(alias, "postgresql", problem="NAME is empty")
    host = str(conf.get("HOST") or "")
    if host.startswith("/"):  # a Unix-socket directory goes in the query, as libpq reads it
        query["host"] = host
        host = ""
    url = (f"postgresql://{_credentials(conf)}{_netloc(host, conf.get('PORT'))}/"
           f"{quote(name, safe='')}")
    if query:
        url += "?" + urlencode(query)
    return DatabaseTarget(alias, "postgresql", url, name, dropped_options=dropped)


def _mysql(alias: str, conf: Mapping[str, Any]) -> DatabaseTarget:
    name = str(conf.get("NAME") or "")
    host = str(conf.get("HOST") or "")
    _, dropped = _options(conf, ())
    if not name:
        return DatabaseTarget(alias, "mysql", problem="NAME is empty")
    if host.startswith("/"):
        return DatabaseTarget(alias, "mysql", problem=(
            f"HOST {host!r} is a Unix socket, which wellkept's MySQL connector does not use; "
            "give a host name or address (127.0.0.1)"))
    url = (f"mysql://{_credentials(conf)}{_netloc(host or '127.0.0.1', conf.get('PORT'))}/"
           f"{quote(name, safe='')}")
    return DatabaseTarget(alias, "mysql", url, name, dropped_options=dropped)


def _sqlite(alias: str, conf: Mapping[str, Any]) -> DatabaseTarget:
    raw = conf.get("NAME")
    name = os.fspath(raw) if isinstance(raw, str | os.PathLike) else ""
    if not name or name == ":memory:" or "mode=memory" in name:
        return DatabaseTarget(alias, "sqlite", name=name, problem=(
            "it is an in-memory SQLite database, which no other connection can reach"))
    if name.startswith("file:"):
        name = name[len("file:"):].split("?", 1)[0]
    path = Path(name).expanduser().resolve()  # relative to the working folder, as Django opens it
    return DatabaseTarget(alias, "sqlite", f"sqlite:///{path}", path.name)
