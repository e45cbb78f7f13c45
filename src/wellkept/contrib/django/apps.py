"""The app's configuration: it registers the system checks, and that is all.

``ready()`` must stay this small: it runs in every web worker, every ``migrate`` and every
shell, so it never starts the scheduler (``manage.py start_maintenance_coordinator`` is its
own process) and never connects to a database.
"""

from __future__ import annotations

from django.apps import AppConfig


class WellkeptConfig(AppConfig):
    name = "wellkept.contrib.django"
    label = "wellkept"
    verbose_name = "wellkept maintenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from wellkept.contrib.django.checks import check_settings

        checks.register(check_settings, "wellkept")
