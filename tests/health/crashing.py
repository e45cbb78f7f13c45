"""A connector with a bug, registered under the scheme ``boom`` by the health tests."""

from __future__ import annotations

from wellkept.connector import Connector, Ping


class Crashing(Connector):
    """Always crashes when pinged."""

    name = "boom"

    def ping(self) -> Ping:
        raise RuntimeError("a bug")
