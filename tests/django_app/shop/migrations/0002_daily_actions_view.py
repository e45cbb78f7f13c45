"""A materialized view over the audit log, on PostgreSQL (the other engines have none), with
the unique index that lets it refresh CONCURRENTLY."""

from typing import Any

from django.db import migrations

CREATE = """
CREATE MATERIALIZED VIEW shop_daily_actions AS
    SELECT date_trunc('day', created_at) AS day, count(*) AS actions
    FROM shop_auditlog GROUP BY 1;
CREATE UNIQUE INDEX shop_daily_actions_day ON shop_daily_actions (day);
"""


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP MATERIALIZED VIEW IF EXISTS shop_daily_actions")


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
