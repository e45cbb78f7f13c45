"""``wellkept run``: run task instances or built-in kinds now."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from wellkept.cli.common import OutputOption, err_console, sigterm_interrupts, state_of

if TYPE_CHECKING:
    from wellkept.context import ProgressCallback


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME...", help="task instances from the config, or built-in kinds "
                                "(with --target)", show_default=False)] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="run every configured task")] = False,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", metavar="NAME", help="run one schedule's tasks now")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", metavar="T", help="the target (required for a built-in kind)")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="report exactly what would be done; change nothing")] = False,
    output: OutputOption = None,
) -> None:
    """Run configured task instances or built-in kinds, record each run, and report."""
    from wellkept.engine import Engine

    state = state_of(ctx)
    fmt = state.output_for(output)
    settings = state.settings()
    engine = Engine(settings)
    requests = engine.resolve(names or [], all_tasks=all_tasks, schedule=schedule,
                              target=target)
    progress = _progress_reporter(fmt == "text" and not state.quiet)
    try:
        with sigterm_interrupts():
            batch = engine.run(requests, dry_run=dry_run, on_progress=progress)
    finally:
        _stop_progress()
    from wellkept.cli.render import print_batch

    print_batch(batch, fmt)
    raise typer.Exit(batch.exit_code)


_live: dict[str, object] = {}


def _progress_reporter(enabled: bool) -> ProgressCallback | None:
    """A callback that shows the current step on a terminal (stderr), or None."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=err_console(), transient=True)
    progress.start()
    _live["status"] = progress
    task = progress.add_task("starting…", total=100)
    last = {"percent": 0.0}

    def report(step: str, percent: float | None, description: str) -> None:
        from rich.markup import escape

        if percent is not None and percent < last["percent"]:
            progress.reset(task)  # the next run of the batch started
        last["percent"] = percent or 0.0
        progress.update(task, completed=percent or 0.0,
                        description=escape(f"{step}: {description}"))

    return report


def _stop_progress() -> None:
    status = _live.pop("status", None)
    if status is not None:
        status.stop()  # type: ignore[attr-defined]
