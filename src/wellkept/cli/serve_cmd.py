"""``wellkept serve`` (the coordinator) and ``wellkept recover``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wellkept.cli.common import OutputOption, console, print_json, state_of

if TYPE_CHECKING:
    from wellkept.recovery import RecoveryReport


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("recover")(recover)


def serve(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(
        "--listen", "-l", metavar="HOST:PORT",
        help="also serve the HTTP API and dashboard here [default: the config's api.listen, "
             "when it is written; else no API]")] = None,
    pidfile: Annotated[Path | None, typer.Option(
        "--pidfile", metavar="PATH",
        help="write this process's id here; refuse to start if a live process holds it")] = None,
) -> None:
    """Run the coordinator in the foreground: fire schedules, recover interrupted runs, run
    emergency triggers, and serve the REST API, dashboard and /metrics (with --listen or
    api.listen). Stops cleanly on SIGTERM or Ctrl-C."""
    from wellkept.coordinator import Coordinator
    from wellkept.coordinator.pidfile import pidfile as hold_pidfile
    from wellkept.engine import Engine
    from wellkept.errors import UsageError
    from wellkept.listen import check_exposure, parse_listen

    state = state_of(ctx)
    if not state.verbose and not state.quiet:
        state.verbose = 1  # a daemon's log says what it fired and recovered
    settings = state.settings()
    address = None
    if listen is not None or settings.api.enabled:
        try:
            address = parse_listen(listen if listen is not None else settings.api.listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        check_exposure(address, settings.api.tokens)  # before anything is bound
        _require_web()
    engine = Engine(settings)
    engine.store.prepare(in_child=True)  # keeps Alembic out of the daemon's memory
    with hold_pidfile(pidfile):
        coordinator = Coordinator(engine)
        if address is None:
            code = coordinator.serve()
        else:
            from wellkept.api.server import serve as serve_api

            code = serve_api(coordinator, address)
    raise typer.Exit(code)


def _require_web() -> None:
    from wellkept.connectors._drivers import require

    for module in ("fastapi", "uvicorn", "jinja2", "orjson"):
        require(module, "web", "The HTTP API (serve --listen)")


def recover(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="list interrupted runs and the strategy each would get; "
                                "change nothing")] = False,
    output: OutputOption = None,
) -> None:
    """Find interrupted runs and recover them now (resume, restart or validate)."""
    from wellkept.engine import Engine
    from wellkept.recovery import Recoverer

    state = state_of(ctx)
    fmt = state.output_for(output)
    engine = Engine(state.settings())
    report = Recoverer(engine).run(dry_run=dry_run)
    if fmt == "json":
        print_json(report.to_json())
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _print_report(report: RecoveryReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from wellkept.cli.render import status_text

    out = console()
    if report.found:
        table = Table(title="interrupted runs found" + (" (dry run)" if report.dry_run else ""),
                      title_justify="left")
        for col in ("run", "task", "target", "progress", "now", "why"):
            table.add_column(col, overflow="fold")
        for i in report.found:
            table.add_row(i.run_id[:8], escape(i.task), escape(i.target), _percent(i),
                          status_text(i.status), escape(i.detail))
        out.print(table)
    if not report.recovered:
        out.print("nothing to recover" if not report.found else "nothing left to recover")
        return
    table = Table(title="would recover (dry run)" if report.dry_run else "recovered",
                  title_justify="left")
    for col in ("run", "task", "target", "strategy", "why", "result"):
        table.add_column(col, overflow="fold")
    for i in report.recovered:
        result = (f"{status_text(str(i.recovery.status))}: {escape(i.recovery.message)}"
                  if i.recovery else "-" if report.dry_run else "[bold red]not recovered[/]")
        table.add_row(i.run_id[:8], escape(i.task), escape(i.target), i.strategy or "-",
                      escape(i.strategy_reason), result)
    out.print(table)


def _percent(item: object) -> str:
    value = getattr(item, "progress_percent", None)
    return "-" if value is None else f"{value:.0f}%"
