"""The app's configuration: it registers the system checks and the ``post_migrate`` receiver
that makes wellkept's history tables, and that is all.

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
        from django.db.models.signals import post_migrate

        from wellkept.contrib.django.checks import check_settings
        from wellkept.contrib.django.tables import create_history_tables

        checks.register(check_settings, "wellkept")
        post_migrate.connect(create_history_tables, sender=self,
                             dispatch_uid="wellkept.history_tables")
