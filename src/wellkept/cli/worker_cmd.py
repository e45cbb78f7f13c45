"""``wellkept worker``: a Celery worker for the config's queues (``executor: celery``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from wellkept.cli.common import state_of


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", min=1, metavar="N",
        help="worker processes (runs at once) [default: the number of CPUs]")] = None,
    queues: Annotated[str | None, typer.Option(
        "--queues", "-Q", metavar="QUEUE,…",
        help="queues to take runs from [default: executor.queue and the routes' queues]")]
        = None,
    hostname: Annotated[str | None, typer.Option(
        "--hostname", "-n", metavar="NAME",
        help="the worker's name, as Flower and the runs' details show it "
             "[default: celery@HOST]")] = None,
) -> None:
    """Run a Celery worker in the foreground: take runs from the broker of `executor` and
    execute them, writing records, progress and checkpoints to the shared state store. Stops
    on SIGTERM (warm: running tasks finish) or a second Ctrl-C."""
    from wellkept.errors import UsageError
    from wellkept.history.store import HistoryStore
    from wellkept.integrations.celery.factory import check_broker, create_app

    state = state_of(ctx)
    if not state.verbose and not state.quiet:
        state.verbose = 1
    settings = state.settings()
    if settings.executor.kind != "celery":
        raise UsageError("wellkept worker needs executor: {kind: celery, broker: …} in the "
                         "config (it is inline: runs execute where they are started)")
    store = HistoryStore(settings.state)
    store.prepare(in_child=True)  # migrated once here, not by every worker process
    store.close()  # the worker processes fork from this one: they open their own
    app = create_app(settings)
    check_broker(app)
    if settings.source is not None:
        os.environ["WELLKEPT_CONFIG"] = str(settings.source)
    level = "WARNING" if state.quiet else "DEBUG" if state.verbose > 1 else "INFO"
    argv = ["worker", "--loglevel", level, "-Q",
            queues or ",".join(settings.executor.queues)]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)
