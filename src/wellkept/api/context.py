"""What every router is built from: the engine, the coordinator (if any), the launcher, the
tokens. One instance per app, made by ``create_app``; nothing lives at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from fastapi import Request

from wellkept.api.auth import Tokens
from wellkept.api.cache import AnswerCache
from wellkept.api.launcher import Launcher

if TYPE_CHECKING:
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine

#: history pages read at once, each in a worker thread (the others wait in the event loop, not
#: in threads). A page read is CPU under the GIL, and SQLite's driver lets go of the GIL and
#: takes it back for every row: with 16 requests in 16 threads (FastAPI's default pool has
#: 40), the threads woke one another for every row, and a page of 50 runs cost 9.5-11 ms of
#: the server's CPU, 6 of them in the kernel, against 2.3-2.7 ms with 1 or 2 threads (wrk,
#: 16 connections, 2 cores). Two, so that one slow read (a page deep by offset, a store far
#: away) does not hold up every other.
PAGE_READERS = 2


@dataclass
class ApiContext:
    engine: Engine
    coordinator: Coordinator | None
    launcher: Launcher
    tokens: Tokens
    cache: AnswerCache = field(default_factory=AnswerCache)
    _page_readers: anyio.CapacityLimiter | None = field(default=None, repr=False)

    def page_readers(self) -> anyio.CapacityLimiter:
        """The worker threads that read history pages, at most ``PAGE_READERS`` at once (made
        on first use: a limiter belongs to the event loop that serves the app)."""
        if self._page_readers is None:
            self._page_readers = anyio.CapacityLimiter(PAGE_READERS)
        return self._page_readers

    @property
    def require_token(self) -> Callable[[Request], None]:
        return self.tokens.dependency()

    def task_known(self, name: str) -> bool:
        """A configured task instance or a registered kind."""
        return name in self.engine.settings.tasks or name in self.engine.registry.tasks
