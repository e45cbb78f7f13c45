"""A short-lived cache of rendered answers, for endpoints that dashboards and monitors poll.

``GET /maintenance/status`` reads a dozen things from the store (about 6 ms with 10,000 runs
in an SQLite history). Polled by many clients at once, the same document would be computed
hundreds of times a second; instead it is computed at most once per ``ttl`` (one second), by
one request while the others wait for it, and served as ready-made JSON bytes. An answer is
therefore at most one second old: its ``timestamp`` says when it was computed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: how long a rendered answer is served again
TTL_SECONDS = 1.0


class AnswerCache:
    """Rendered answers by key, each fresh for ``ttl`` seconds; one computation at a time
    per key (the others wait and take its result)."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._answers: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, compute: Callable[[], bytes]) -> bytes:
        found = self._answers.get(key)
        if found is not None and time.monotonic() - found[0] < self.ttl:
            return found[1]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._answers.get(key)  # another request may have computed it meanwhile
            if found is not None and time.monotonic() - found[0] < self.ttl:
                return found[1]
            body = compute()
            self._answers[key] = (time.monotonic(), body)
            return body
