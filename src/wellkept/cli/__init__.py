"""The ``wellkept`` command: a thin shell over the library.

Each command parses its options, calls the engine and renders the result. Heavy imports
(pydantic, SQLAlchemy, drivers, Rich tables) happen inside the commands, so ``wellkept --help``
stays fast. Errors become exit codes here and nowhere else: 0 all completed, 1 a run failed or
partly failed, 2 usage or config error (nothing ran).
"""

from __future__ import annotations

import gc
import sys
from typing import Annotated

import typer

from wellkept import __version__
from wellkept.cli import (
    advise_cmd,
    backups_cmd,
    dashboard_cmd,
    health_cmd,
    history_cmd,
    report_cmd,
    run_cmd,
    serve_cmd,
    setup_cmds,
    status_cmd,
    tasks_cmd,
    worker_cmd,
)
from wellkept.cli.common import OutputOption, State, error_line, fail_on_errors

app = typer.Typer(
    name="wellkept",
    help="Keeps databases and the services around them well kept: scheduled, recorded, "
         "resumable maintenance for PostgreSQL, MySQL/MariaDB, SQLite, DuckDB, Redis and the "
         "host.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wellkept {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", metavar="PATH", envvar="WELLKEPT_CONFIG",
        help="config file [default: ./wellkept.yml]")] = None,
    output: OutputOption = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="more log output (-vv for debug)")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    ctx.obj = State(config=config, output=output or "text", verbose=verbose, quiet=quiet)


for module in (setup_cmds, tasks_cmd, run_cmd, history_cmd, status_cmd, health_cmd, advise_cmd,
               backups_cmd, report_cmd, dashboard_cmd, serve_cmd, worker_cmd):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        with fail_on_errors():
            app(prog_name="wellkept")
    except SystemExit as exc:
        if exc.code == 130 and _interrupted(exc):
            # Typer turns Ctrl-C into a silent exit 130 before fail_on_errors sees it
            error_line("interrupted")
        raise
    finally:
        # The command is over and what it made is about to go. Without this the interpreter's
        # exit runs a full collection over every object of every imported module (SQLAlchemy,
        # pydantic, the drivers): 0.1-0.3 s for nothing, and a short command's largest cost.
        gc.freeze()
    sys.exit(0)


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a KeyboardInterrupt (Typer raises SystemExit(130) while
    handling its Exit(130), which it raised from the KeyboardInterrupt)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
