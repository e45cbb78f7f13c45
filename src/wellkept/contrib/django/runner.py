"""Run maintenance operations on one database: what ``manage.py maintenance`` and the Celery
task both call.

Each operation becomes the runs of its plan (see ``operations``), carried through the engine
like any other run: recorded in the history before and after, under the target lock when it
mutates, with a dry run that changes nothing. An operation with nothing it can do is recorded
as a ``skipped`` run with the reason, so the history shows that it was asked for. One
operation failing never stops the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from wellkept.contrib.django.conf import DjangoConfig
from wellkept.contrib.django.databases import DatabaseTarget
from wellkept.contrib.django.operations import OPERATIONS, instance_name
from wellkept.engine import Engine, RunRequest
from wellkept.errors import UsageError
from wellkept.records import RunRecord, utcnow
from wellkept.task import TaskParams
from wellkept.types import RunStatus, Trigger, overall_status


@dataclass
class OperationOutcome:
    """One operation's runs (one per rule or instance that carries it out)."""

    operation: str
    records: list[RunRecord] = field(default_factory=list)

    @property
    def status(self) -> RunStatus:
        done: list[RunStatus] = [r.status for r in self.records
                                 if r.status is not RunStatus.SKIPPED]
        if not done:
            return RunStatus.SKIPPED
        return overall_status(done)


@dataclass
class MaintenanceRun:
    """Everything one ``manage.py maintenance`` did, in the order it did it."""

    database: DatabaseTarget
    outcomes: list[OperationOutcome]
    started_at: datetime
    duration_seconds: float
    dry_run: bool

    @property
    def records(self) -> list[RunRecord]:
        return [r for o in self.outcomes for r in o.records]

    @property
    def status(self) -> RunStatus:
        statuses: list[RunStatus] = [o.status for o in self.outcomes
                                     if o.status is not RunStatus.SKIPPED]
        return overall_status(statuses) if statuses else RunStatus.SKIPPED

    @property
    def failed(self) -> list[OperationOutcome]:
        return [o for o in self.outcomes if o.status.is_failure]


def run_maintenance(config: DjangoConfig, operations: Sequence[str], *,
                    database: str = "default", dry_run: bool = False,
                    engine: Engine | None = None, trigger: Trigger = Trigger.MANUAL,
                    on_record: Callable[[str, RunRecord], None] | None = None
                    ) -> MaintenanceRun:
    """Run ``operations`` (names of the nine operations, in this order) on ``database``;
    ``on_record(operation, record)`` hears of each run as it ends (progress output)."""
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown:
        raise UsageError(f"unknown operation(s) {', '.join(unknown)}; choose from: "
                         + ", ".join(OPERATIONS))
    if not operations:
        raise UsageError("name at least one operation (--operation NAME), or use --all or "
                         "--schedule daily|weekly|monthly")
    db = config.database(database)
    if engine is None:
        own = Engine(config.settings)
        try:
            return run_maintenance(config, operations, database=database, dry_run=dry_run,
                                   engine=own, trigger=trigger, on_record=on_record)
        finally:
            own.store.close()  # a web or Celery process must not keep a pool per call
    started, t0 = utcnow(), time.monotonic()
    outcomes = []
    for op in operations:
        outcome = OperationOutcome(op)
        plan = config.plans[database][op]
        if plan.tasks:
            for name in plan.tasks:
                for request in engine.resolve([name], target=database):
                    outcome.records.append(engine.run_one(request, dry_run=dry_run,
                                                          trigger=trigger))
        elif plan.reason is not None:
            kind = (OPERATIONS[op].kinds or ("cleanup",))[0]
            request = RunRequest(task=op, kind=kind, target=database, params=TaskParams())
            outcome.records.append(engine.record_skipped(request, plan.reason, trigger=trigger,
                                                         dry_run=dry_run))
        else:
            # the engine has no such feature (views on SQLite): the run says so as `skipped`,
            # recorded under the name the database's instance of the kind has elsewhere
            kind = OPERATIONS[op].kinds[0]
            request = replace(engine.kind_request(kind, database),
                              task=instance_name(kind, database))
            outcome.records.append(engine.run_one(request, dry_run=dry_run, trigger=trigger))
        outcomes.append(outcome)
        if on_record is not None:
            for record in outcome.records:
                on_record(op, record)
    return MaintenanceRun(db, outcomes, started, time.monotonic() - t0, dry_run)
