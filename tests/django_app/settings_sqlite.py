"""The test project with SQLite as its only database, as a new Django project starts: then
wellkept keeps its history in that same file (``WELLKEPT['state']`` defaults to ``default``)."""

from tests.django_app.settings import *  # noqa: F403
from tests.django_app.settings import BASE_DIR, WELLKEPT

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": BASE_DIR / "only.sqlite3"}}
TEST_SESSIONS_DATABASE = "default"
WELLKEPT = {**WELLKEPT, "tasks": {"app-backup": {**WELLKEPT["tasks"]["app-backup"],
                                                 "targets": ["default"]}}}
DATABASE_CLEANUP_RULES = {name: {**rule, "database_alias": "default"}
                          for name, rule in DATABASE_CLEANUP_RULES.items()}  # noqa: F405
CUSTOM_MAINTENANCE_SCHEDULES: dict[str, object] = {}
