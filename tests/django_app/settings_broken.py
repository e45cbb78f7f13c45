"""The test project with a mistake in ``DATABASE_CLEANUP_RULES``, which the system checks
refuse before any of wellkept's commands runs."""

from tests.django_app.settings import *  # noqa: F403
from tests.django_app.settings import DATABASE_CLEANUP_RULES

DATABASE_CLEANUP_RULES = {**DATABASE_CLEANUP_RULES, "bad_days": {
    "table": "shop_auditlog", "date_column": "created_at", "retention_days": "ninety"}}
