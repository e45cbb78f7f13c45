"""A read-only admin over wellkept's runs (``TaskExecutionLog``).

Staff with the ``view`` permission see every run, filter by status, kind, database, trigger
and dry run, and search task names and messages; nobody adds, changes or deletes runs here,
since the history is wellkept's record of what happened (its coordinator prunes it after
``recovery.retention``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from wellkept.contrib.django.models import TaskExecutionLog

if TYPE_CHECKING:  # the stubs make ModelAdmin generic; at run time it is not subscriptable
    _ModelAdmin = admin.ModelAdmin[TaskExecutionLog]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(TaskExecutionLog)
class TaskExecutionLogAdmin(_ModelAdmin):
    list_display = ("started_at", "task_name", "kind", "target", "status_label", "dry_run",
                    "trigger", "duration_seconds", "message")
    list_filter = ("status", "kind", "target", "trigger", "dry_run")
    search_fields = ("task_name", "message", "run_id")
    date_hierarchy = "started_at"
    list_per_page = 50
    fields = ("run_id", "task_name", "kind", "target", "status", "dry_run", "trigger",
              "schedule", "scheduled_for", "started_at", "finished_at", "duration_seconds",
              "message", "metrics_json", "details_json", "errors_json", "host", "pid",
              "attempt", "recovery_of")
    readonly_fields = fields

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: TaskExecutionLog) -> str:
        colour = {"completed": "#2e7d32", "skipped": "#9e6a00", "partial_failure": "#c62828",
                  "failed": "#c62828", "running": "#1565c0"}.get(obj.status, "#555")
        return format_html('<b style="color:{}">{}</b>', colour, obj.status)

    @admin.display(description="metrics")
    def metrics_json(self, obj: TaskExecutionLog) -> str:
        return _pretty(obj.metrics)

    @admin.display(description="details")
    def details_json(self, obj: TaskExecutionLog) -> str:
        return _pretty(obj.details)

    @admin.display(description="errors")
    def errors_json(self, obj: TaskExecutionLog) -> str:
        return _pretty(obj.errors)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, default=str))
