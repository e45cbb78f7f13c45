"""The executors (see :mod:`wellkept.executor`): ``inline`` and ``celery``."""
