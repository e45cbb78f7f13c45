"""Work on a database server rather than in one database: `restore --create` makes (and, when
the restore fails, drops again) the database it restores into, through a session on the
server's maintenance database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_server(cls: Any, settings: Any, server_url: str, what: str,
              call: Callable[[Any], None]) -> None:
    """``call`` a session of connector class ``cls`` at ``server_url`` (with ``settings``'
    timeouts); its errors read ``what: …``."""
    server = cls("restore", settings.model_copy(update={"url": server_url}))
    try:
        with server.errors(what):
            call(server.conn)
    finally:
        server.close()
