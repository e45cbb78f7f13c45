"""Front ends that other systems start: Celery workers (``wellkept.integrations.celery``)."""
