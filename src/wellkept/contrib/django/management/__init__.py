"""Django management commands of wellkept (``manage.py maintenance`` and friends)."""
