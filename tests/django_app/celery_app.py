"""The test project's Celery app, configured from the Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_app.settings")
app = Celery("tests.django_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
