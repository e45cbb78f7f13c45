"""The celery executor: the coordinator sends each run to a Celery worker and waits for its
record in the shared store.

Sending a run: its dispatch row is written ``queued`` first, then the message is published
with the run's id as the Celery task id (a second message for the same run, whatever its
origin, is a duplicate the worker recognises). The coordinator's worker thread then waits
until the run's dispatch finished, or its record ended without its worker (orphaned: the
recovery takes it from there). Priorities stay the coordinator's: it sends no more runs than
``coordinator.max_concurrent`` at once, highest priority first, so the broker's queue stays
short and an emergency never waits behind a backlog there.

``upkeep`` (each recovery pass of the leader) sends again what the broker lost: a run still
``queued`` after ``executor.requeue_after`` while its queue is empty, and a claim whose
worker died before the run started. Both are safe: a duplicate is a no-op at the worker.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wellkept.executors import payload as messages
from wellkept.executors.watcher import DispatchWatcher
from wellkept.history import dispatches
from wellkept.history.dispatches import Dispatch
from wellkept.liveness import process_alive
from wellkept.records import RunRecord
from wellkept.redact import redact
from wellkept.types import RunStatus

if TYPE_CHECKING:
    from celery import Celery

    from wellkept.engine import Engine, RunRequest
    from wellkept.types import Trigger

log = logging.getLogger("wellkept.executor")


class CeleryExecutor:
    """``executor: {kind: celery, broker: …, queue: maintenance}``."""

    kind = "celery"

    def __init__(self, engine: Engine, app: Celery | None = None) -> None:
        from wellkept.integrations.celery.factory import create_app

        self.engine = engine
        self.store = engine.store
        self.settings = engine.settings.executor
        self.app = app or create_app(engine.settings)
        self.watcher = DispatchWatcher(self.store)

    def start(self) -> None:
        from wellkept.integrations.celery.factory import check_broker

        check_broker(self.app)
        log.info("runs go to Celery workers on %s (queues %s)", redact(self.settings.broker or ""),
                 ", ".join(self.settings.queues))

    def run(self, request: RunRequest, *, trigger: Trigger,
            dry_run: bool = False) -> RunRecord:
        request = replace(request, run_id=request.run_id or str(uuid.uuid4()))
        assert request.run_id is not None
        body = messages.encode(request, trigger=trigger, dry_run=dry_run)
        queue = self.settings.queue_for(request.target)
        dispatches.create(self.store, request.run_id, task=request.task,
                          target=request.target, queue=queue, payload=body,
                          now=datetime.now(UTC))
        spec = request.recovery
        waiter = self.watcher.watch(request.run_id,
                                    recovering=spec.of.run_id if spec else None,
                                    claimer=spec.claimer if spec else None)
        self.publish(request.run_id, queue, body)
        waiter.wait()
        return self._record(request, trigger, dry_run)

    def publish(self, run_id: str, queue: str, body: dict[str, Any]) -> bool:
        """Send the run's message; False (logged) when the broker cannot take it now: the
        run stays queued in the store, and ``upkeep`` sends it once the broker answers."""
        from wellkept.integrations.celery.factory import TASK_RUN

        try:
            self.app.send_task(TASK_RUN, kwargs=body, task_id=run_id, queue=queue,
                               shadow=messages.label(body))
        except Exception as exc:
            log.error("cannot send run %s of %s to the broker (%s); it is sent again when "
                      "the broker answers", run_id, body["task"],
                      redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__)
            return False
        dispatches.published(self.store, run_id, datetime.now(UTC))
        return True

    def _record(self, request: RunRequest, trigger: Trigger, dry_run: bool) -> RunRecord:
        assert request.run_id is not None
        record = self.store.get_run(request.run_id)
        if record is not None:
            return record
        found = dispatches.get(self.store, request.run_id)
        status = RunStatus.RUNNING
        message = f"sent to Celery queue {found.queue if found else '?'}; not waited for"
        if found is not None and found.status == dispatches.FINISHED:
            status, message = RunStatus(found.outcome or "skipped"), \
                f"not run by {found.worker}: see its log"
        # not stored: the worker has not written the run (or refused it without a record)
        return RunRecord(run_id=request.run_id, task=request.task, kind=request.kind,
                         target=request.target, status=status, dry_run=dry_run,
                         trigger=trigger, started_at=datetime.now(UTC), message=message,
                         details={"recovery": {"not_run": message}} if request.recovery
                         else {})

    # --- upkeep ---------------------------------------------------------------------------------

    def upkeep(self, now: datetime) -> None:
        dispatches.close_ended(self.store, now)
        lease = self.engine.settings.recovery.lease
        for item in dispatches.stale_claims(self.store):
            gone = process_alive(item.worker_host_id or "", item.worker_pid or 0,
                                 item.claimed_at or now) is False
            if (gone or (item.claimed_at is not None and now - item.claimed_at > lease)) \
                    and dispatches.requeue_stale(self.store, item):
                log.warning("run %s of %s: its worker %s died before starting it; sending it "
                            "again", item.run_id, item.task, item.worker)
                self.publish(item.run_id, item.queue, item.payload)
        empty: dict[str, bool] = {}
        for item in dispatches.to_republish(self.store, now, self.settings.requeue_after):
            if item.queue not in empty:
                empty[item.queue] = self.queue_size(item.queue) in (0, None)
            if empty[item.queue] or item.published_at is None:
                self._resend(item)

    def _resend(self, item: Dispatch) -> None:
        if item.published_at is not None:
            log.warning("run %s of %s: no worker took its message in %s and its queue %s is "
                        "empty (the broker lost it?); sending it again", item.run_id, item.task,
                        self.settings.requeue_after, item.queue)
        self.publish(item.run_id, item.queue, item.payload)

    def queue_size(self, queue: str) -> int | None:
        """Messages waiting in ``queue`` (0 when it does not exist); None when the broker
        cannot be asked."""
        try:
            with self.app.connection_for_write(connect_timeout=5) as conn:
                channel = conn.channel()
                try:
                    return int(channel.queue_declare(queue=queue, passive=True).message_count)
                except Exception as exc:
                    if "NOT_FOUND" in str(exc) or "404" in str(exc) or "no queue" in \
                            str(exc).lower():
                        return 0
                    raise
                finally:
                    with contextlib.suppress(Exception):  # closed by the broker (a 404)
                        channel.close()
        except Exception as exc:
            log.debug("cannot measure queue %s: %s", queue, exc)
            return None

    def close(self) -> None:
        self.watcher.close()

    def snapshot(self) -> dict[str, Any]:
        return {"kind": self.kind, "broker": redact(self.settings.broker or ""),
                "queues": self.settings.queues, "waiting_for": self.watcher.waiting}
