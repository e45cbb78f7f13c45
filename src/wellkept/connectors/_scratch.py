"""The scratch databases restore tests make: their names, and which ones a crash left behind.

A restore test creates ``wk_verify_<created, hex seconds>_<random>`` and drops it when done.
A run killed in between (kill -9, a lost machine) cannot drop it, so the next restore test on
that server drops every scratch database that nobody is connected to and that is older than
``STALE_AFTER``: a live restore test always has a session in its database (pg_restore, or
wellkept's own connection), except in the instant between creating it and connecting.
"""

from __future__ import annotations

import re
import secrets
import time

PREFIX = "wk_verify_"
#: LIKE pattern of the names (``_`` escaped)
LIKE = "wk\\_verify\\_%"
STALE_AFTER = 600.0
_NAME = re.compile(r"wk_verify_([0-9a-f]{8,})_[0-9a-f]{8}")


def new_name(now: float | None = None) -> str:
    return f"{PREFIX}{int(time.time() if now is None else now):x}_{secrets.token_hex(4)}"


def is_stale(name: str, now: float | None = None) -> bool:
    """Whether ``name`` is a scratch database made more than STALE_AFTER ago."""
    match = _NAME.fullmatch(name)
    if match is None:
        return False
    return (time.time() if now is None else now) - int(match.group(1), 16) > STALE_AFTER
