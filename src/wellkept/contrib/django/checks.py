"""System checks: the wellkept settings are validated whenever Django checks a project
(``manage.py check``, ``runserver``, ``migrate``, and before each of wellkept's commands).

Each problem is its own message, naming the setting and the key: ``wellkept.E001`` for an
invalid setting, ``wellkept.W001`` for a database wellkept leaves out, ``wellkept.W002`` for
``OPTIONS`` it does not use, ``wellkept.W003`` for a history the admin cannot read,
``wellkept.W004`` for reports turned on with nowhere to send them. Building the config reads
settings only; nothing connects.
"""

from __future__ import annotations

from typing import Any

from django.core import checks


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from wellkept.contrib.django.conf import build

    built = build()
    out: list[checks.CheckMessage] = []
    for issue in built.issues:
        cls = checks.Error if issue.level == "error" else checks.Warning
        out.append(cls(issue.message, hint=issue.hint, id=issue.id))
    return out
