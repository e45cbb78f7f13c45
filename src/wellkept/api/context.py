"""What every router is built from: the engine, the coordinator (if any), the launcher, the
tokens. One instance per app, made by ``create_app``; nothing lives at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from wellkept.api.auth import Tokens
from wellkept.api.cache import AnswerCache
from wellkept.api.launcher import Launcher

if TYPE_CHECKING:
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine


@dataclass
class ApiContext:
    engine: Engine
    coordinator: Coordinator | None
    launcher: Launcher
    tokens: Tokens
    cache: AnswerCache = field(default_factory=AnswerCache)

    @property
    def require_token(self) -> Callable[[Request], None]:
        return self.tokens.dependency()

    def task_known(self, name: str) -> bool:
        """A configured task instance or a registered kind."""
        return name in self.engine.settings.tasks or name in self.engine.registry.tasks
