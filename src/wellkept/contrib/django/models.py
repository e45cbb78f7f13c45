"""wellkept's run history seen through the ORM: ``TaskExecutionLog``.

The table is wellkept's own ``wk_runs``, created and migrated by wellkept (Alembic), the same
schema a standalone wellkept uses, so the model is unmanaged: Django never creates, alters or
flushes it. It is read from the database holding wellkept's history (``WELLKEPT['state']``,
by default ``default``), whichever database the routers would pick. Rows are written only
by wellkept's engine; the admin shows them read-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models

if TYPE_CHECKING:  # the fields' (set, get) types; not subscriptable at run time
    Text = models.CharField[str, str]
    OptText = models.CharField[str | None, str | None]
    LongText = models.TextField[str, str]
    When = models.DateTimeField[datetime, datetime]
    OptWhen = models.DateTimeField[datetime | None, datetime | None]
    OptFloat = models.FloatField[float | None, float | None]
    Int = models.IntegerField[int, int]
    Bool = models.BooleanField[bool, bool]
    _JSONField = models.JSONField[Any, Any]
else:
    _JSONField = models.JSONField


def history_database() -> str:
    """The alias that holds wellkept's history (see ``conf``)."""
    from wellkept.contrib.django.conf import history_alias

    alias = history_alias()
    if alias is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("wellkept's history is not in one of DATABASES; set "
                                   "WELLKEPT['state'] to a PostgreSQL or SQLite alias")
    return alias


class StoredJSONField(_JSONField):
    """A JSON column of wellkept's schema: SQLAlchemy made it ``json`` on PostgreSQL (not
    ``jsonb``), which psycopg hands back already decoded, where Django expects text."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, dict | list):
            return value
        return super().from_db_value(value, expression, connection)


class HistoryManager(models.Manager["TaskExecutionLog"]):
    """Queries go to the history's database unless ``.using()`` says otherwise."""

    def get_queryset(self) -> models.QuerySet[TaskExecutionLog]:
        return models.QuerySet(self.model, using=self._db or history_database())


class TaskExecutionLog(models.Model):
    """One run of a maintenance task: what ran, where, how it ended, and its figures.

    (The fields are annotated by hand: wellkept type-checks with django-stubs but without its
    mypy plugin, which would need a settings module to import.)"""

    run_id: Text = models.CharField(max_length=36, primary_key=True)
    task_name: Text = models.CharField("task", max_length=200, db_column="task")
    kind: Text = models.CharField(max_length=100)
    target: Text = models.CharField("database", max_length=200)
    status: Text = models.CharField(max_length=20)
    dry_run: Bool = models.BooleanField(default=False)
    trigger: Text = models.CharField(max_length=20)
    schedule: OptText = models.CharField(max_length=200, null=True, blank=True)
    scheduled_for: OptWhen = models.DateTimeField(null=True, blank=True)
    started_at: When = models.DateTimeField()
    finished_at: OptWhen = models.DateTimeField(null=True, blank=True)
    duration_seconds: OptFloat = models.FloatField(null=True, blank=True)
    message: LongText = models.TextField(blank=True, default="")
    metrics: StoredJSONField = StoredJSONField(default=dict)
    details: StoredJSONField = StoredJSONField(default=dict)
    errors: StoredJSONField = StoredJSONField(default=list)
    host: Text = models.CharField(max_length=255, blank=True, default="")
    pid: Int = models.IntegerField(default=0)
    attempt: Int = models.IntegerField(default=1)
    recovery_of: OptText = models.CharField(max_length=36, null=True, blank=True)

    objects: ClassVar[HistoryManager] = HistoryManager()

    class Meta:
        managed = False
        db_table = "wk_runs"
        ordering = ("-started_at",)
        verbose_name = "task execution log"
        verbose_name_plural = "task execution logs"

    def __str__(self) -> str:
        return f"{self.task_name} on {self.target}: {self.status}"

    @property
    def result(self) -> dict[str, Any]:
        """The run's outcome in one dict: status, message, metrics, details, errors."""
        return {"status": self.status, "message": self.message, "metrics": self.metrics,
                "details": self.details, "errors": self.errors}
