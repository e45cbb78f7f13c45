"""wellkept as a reusable Django app: add ``"wellkept.contrib.django"`` to ``INSTALLED_APPS``.

It reads its targets from ``DATABASES``, its rules from ``DATABASE_CLEANUP_RULES`` and
``CUSTOM_MAINTENANCE_SCHEDULES``, alert recipients from ``MAINTENANCE_NOTIFICATION_EMAILS``
and everything else from a ``WELLKEPT = {…}`` dict with wellkept.yml's keys (see ``conf``).
It adds ``manage.py maintenance``, ``maintenance_status`` and
``start_maintenance_coordinator``, system checks for those settings, and a read-only admin
over wellkept's own run history. Loading the app starts nothing and connects to nothing.
"""
