"""TaskExecutionLog over wellkept's ``wk_runs`` (unmanaged: this creates no table)."""

from django.db import migrations, models

import wellkept.contrib.django.models


class Migration(migrations.Migration):
    initial = True

    operations = [
        migrations.CreateModel(
            name="TaskExecutionLog",
            fields=[
                ("run_id", models.CharField(max_length=36, primary_key=True, serialize=False)),
                ("task_name", models.CharField(db_column="task", max_length=200,
                                               verbose_name="task")),
                ("kind", models.CharField(max_length=100)),
                ("target", models.CharField(max_length=200, verbose_name="database")),
                ("status", models.CharField(max_length=20)),
                ("dry_run", models.BooleanField(default=False)),
                ("trigger", models.CharField(max_length=20)),
                ("schedule", models.CharField(blank=True, max_length=200, null=True)),
                ("scheduled_for", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("duration_seconds", models.FloatField(blank=True, null=True)),
                ("message", models.TextField(blank=True, default="")),
                ("metrics", wellkept.contrib.django.models.StoredJSONField(default=dict)),
                ("details", wellkept.contrib.django.models.StoredJSONField(default=dict)),
                ("errors", wellkept.contrib.django.models.StoredJSONField(default=list)),
                ("host", models.CharField(blank=True, default="", max_length=255)),
                ("pid", models.IntegerField(default=0)),
                ("attempt", models.IntegerField(default=1)),
                ("recovery_of", models.CharField(blank=True, max_length=36, null=True)),
            ],
            options={
                "verbose_name": "task execution log",
                "verbose_name_plural": "task execution logs",
                "db_table": "wk_runs",
                "ordering": ("-started_at",),
                "managed": False,
            },
        ),
    ]
