"""An audit log (cleaned by age) and failed tasks with soft deletes (cleaned a while after
their deletion), as seed 002's AuditLog and FailedTask."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone


class AuditLog(models.Model):
    action = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)


class LiveManager(models.Manager["FailedTask"]):
    """Hides soft-deleted rows, as an application's default manager would."""

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(deleted_at__isnull=True)


class FailedTask(models.Model):
    name = models.CharField(max_length=100)
    error = models.TextField(default="")
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = LiveManager()
    all_objects = models.Manager()

    def soft_delete(self) -> None:
        self.deleted_at = timezone.now()
        self.save(update_fields=["deleted_at"])
