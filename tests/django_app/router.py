"""Sends django.contrib.sessions to ``settings.TEST_SESSIONS_DATABASE`` (read at each call,
so a test can move them with override_settings); migrations go everywhere."""

from __future__ import annotations

from typing import Any

from django.conf import settings


class SessionsRouter:
    def _db(self, model: Any) -> str | None:
        if model._meta.app_label == "sessions":
            return str(settings.TEST_SESSIONS_DATABASE)
        return None

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._db(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._db(model)
