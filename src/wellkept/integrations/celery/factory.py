"""The Celery app of a config: its broker, its queues, and the settings that keep the broker a
mere delivery service (docs/celery.md explains each choice).

- **acks late, prefetch 1**: a message is acknowledged after its task ran, and a worker holds
  no more messages than it has free processes. A worker that dies before starting a run
  leaves its message to the broker, which hands it to another worker; a long backup never
  keeps other messages waiting behind it in a busy worker's buffer.
- **no requeue on a lost worker** (``task_reject_on_worker_lost`` off): when a worker process
  is killed mid-run, its message is acknowledged, not redelivered (which loops on a task that
  kills its worker). The run's lease in the store lapses instead, and the coordinator recovers
  the run from its checkpoint, on whichever worker takes the recovery.
- **visibility timeout above the longest run** (Redis): Redis redelivers an unacknowledged
  message after it, even while the task still runs. Redelivery is harmless (the claim in the
  store makes it a no-op), but should be rare.
- **no result backend**: results, progress and checkpoints are written to the state store.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wellkept.errors import BrokerUnreachable, ConfigError, MissingDependency
from wellkept.redact import redact

if TYPE_CHECKING:
    from celery import Celery

    from wellkept.config import Settings

TASK_RUN = "wellkept.run"
TASK_FIRE_SCHEDULE = "wellkept.fire_schedule"
TASK_RECOVER = "wellkept.recover"
#: the key of the app's conf that names the config file its workers load
CONFIG_KEY = "wellkept_config"
MIN_VISIBILITY = timedelta(hours=1)


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings`` (``executor: {kind: celery, broker: …}``), with wellkept's
    tasks registered."""
    executor = settings.executor
    if executor.kind != "celery" or not executor.broker:
        raise ConfigError("executor: Celery needs executor: {kind: celery, broker: …} in the "
                          "config (see docs/celery.md)", str(settings.source or ""))
    try:
        from celery import Celery
    except ModuleNotFoundError:
        raise MissingDependency("celery", "celery", "The celery executor") from None
    from wellkept.integrations.celery import tasks

    app = Celery("wellkept", broker=executor.broker, set_as_current=False)
    app.conf.update(celery_settings(settings))
    tasks.register(app)
    return app


def celery_settings(settings: Settings) -> dict[str, Any]:
    executor = settings.executor
    assert executor.broker is not None
    conf: dict[str, Any] = {
        "task_default_queue": executor.queue,
        "task_create_missing_queues": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": settings.timezone,
        "enable_utc": True,
        # an unreachable broker at start is an error, not an endless wait; a broker lost
        # later is reconnected to, and the runs going on meanwhile carry on
        "broker_connection_retry_on_startup": False,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": 5,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": True,
        CONFIG_KEY: str(settings.source) if settings.source else None,
    }
    if urlsplit(executor.broker).scheme.lower().startswith("redis"):
        conf["broker_transport_options"] = {
            "visibility_timeout": visibility_timeout(settings).total_seconds()}
    return conf


def visibility_timeout(settings: Settings) -> timedelta:
    """Longer than any run may last (its time limit) plus a lease, and at least an hour."""
    from wellkept.registry import Registry

    registry = Registry.default()
    longest = MIN_VISIBILITY
    for task in settings.tasks.values():
        try:
            limit = task.timeout or registry.task_class(task.kind).default_timeout
        except ConfigError:
            continue
        longest = max(longest, limit)
    return longest + settings.recovery.lease


def check_broker(app: Celery, timeout: float = 5.0) -> None:
    """Connect to the broker once; BrokerUnreachable naming it (password masked) when it does
    not answer within ``timeout``."""
    url = str(app.conf.broker_url)
    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                   timeout=timeout)
    except Exception as exc:
        reason = redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        raise BrokerUnreachable(f"cannot reach the Celery broker {redact(url)} "
                                f"(executor.broker): {reason}") from None
