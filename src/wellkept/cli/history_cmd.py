"""``wellkept history``: past runs, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from wellkept.cli.common import OutputOption, console, print_json, state_of


def register(app: typer.Typer) -> None:
    app.command("history")(history)


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=100000,
                                       help="how many runs")] = 20,
    task: Annotated[str | None, typer.Option("--task", metavar="NAME",
                                             help="only this task")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="S",
        help="only this status: completed, partial_failure, failed, skipped, running, "
             "orphaned, dead")] = None,
    output: OutputOption = None,
) -> None:
    """Show past runs, newest first."""
    from wellkept.errors import UsageError
    from wellkept.history.store import HistoryStore
    from wellkept.types import RunStatus

    state = state_of(ctx)
    fmt = state.output_for(output)
    if status is not None and status not in {s.value for s in RunStatus}:
        raise UsageError(f"--status: {status!r} is not a status; choose one of: "
                         + ", ".join(s.value for s in RunStatus))
    settings = state.settings()
    records = HistoryStore(settings.state).list_runs(limit=limit, task=task, status=status)
    if fmt == "json":
        print_json([r.to_json() for r in records])
        return
    from wellkept.cli.render import runs_table

    out = console()
    if not records:
        out.print("no runs recorded yet" + (" matching the filters" if task or status else ""))
        return
    out.print(runs_table(records, show_started=True))
