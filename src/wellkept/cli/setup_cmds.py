"""``wellkept demo``, ``init`` and ``check``: getting started and checking a config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wellkept.cli.common import (
    OutputOption,
    console,
    err_console,
    print_json,
    sigterm_interrupts,
    state_of,
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("init")(init)
    app.command("check")(check)


def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", "-d", help="where to build the demo")] = Path(
        "wellkept-demo"),
    reset: Annotated[bool, typer.Option("--reset", help="rebuild the demo database")] = False,
    output: OutputOption = None,
) -> None:
    """Build an SQLite demo app database and run the daily maintenance cycle on it."""
    from wellkept.demo import build_demo, run_demo

    state = state_of(ctx)
    fmt = state.output_for(output)
    state.setup_logging()
    note = err_console() if fmt == "text" else None
    built = build_demo(folder, reset=reset)
    if note is not None:
        if built.created:
            note.print(f"built {built.database} with {built.rows:,} rows "
                       f"({built.size_bytes / 1e6:.1f} MB)")
        else:
            note.print(f"reusing {built.database} (use --reset to rebuild it)")
    with sigterm_interrupts():
        batch = run_demo(built)
    if fmt == "json":
        print_json(batch.to_json())
        raise typer.Exit(batch.exit_code)
    from wellkept.cli.render import runs_table, summary_line

    out = console()
    out.print(runs_table(batch.results, title="daily maintenance cycle"))
    out.print(summary_line(batch))
    backups = [r.details.get("path") for r in batch.results if r.kind == "backup"]
    me = _self_command()
    out.print(f"\nconfig:   {built.config}")
    out.print(f"history:  {built.state}   ({me} -c {built.config} history)")
    if backups and backups[0]:
        out.print(f"backup:   {backups[0]}")
    out.print(f"try:      {me} -c {built.config} run --all --dry-run")
    raise typer.Exit(batch.exit_code)


def _self_command() -> str:
    """How the user can call wellkept again: `wellkept` if that is on PATH, else the path."""
    import os
    import shutil
    import sys

    invoked = os.path.realpath(sys.argv[0])
    on_path = shutil.which("wellkept")
    if on_path and os.path.realpath(on_path) == invoked:
        return "wellkept"
    relative = os.path.relpath(invoked)
    return relative if len(relative) < len(invoked) else invoked


def init(
    path: Annotated[Path, typer.Option("--path", "-p", help="where to write the config")] = Path(
        "wellkept.yml"),
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter config with the default schedules."""
    from wellkept.errors import UsageError
    from wellkept.starter import STARTER_CONFIG

    if path.exists() and not force:
        raise UsageError(f"{path} already exists; use --force to overwrite it")
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    console().print(f"wrote {path}; edit the targets, then run: wellkept -c {path} check")


def check(ctx: typer.Context, output: OutputOption = None) -> None:
    """Validate the config and ping every target; exit 0 when all answer."""
    from wellkept.probe import check_store, ping_all

    state = state_of(ctx)
    fmt = state.output_for(output)
    settings = state.settings()
    results = ping_all(settings)
    store = check_store(settings.state)
    down = [r for r in results if r["status"] == "down"] or store["error"]
    if fmt == "json":
        print_json({"config": str(settings.source), "valid": True, "state": store,
                    "targets": results})
        raise typer.Exit(1 if down else 0)
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"[green]config is valid[/]: {settings.source} ({len(settings.tasks)} tasks, "
              f"{len(settings.schedules)} schedules)")
    if store["error"]:
        out.print(f"[bold red]state store unusable[/]: {escape(store['error'])}")
    else:
        out.print(f"state store: {escape(store['url'])} [green]ok[/]")
    table = Table(title_justify="left")
    for col in ("target", "url", "status", "latency", "server / error"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = {"up": "green", "locked": "yellow", "down": "bold red"}[r["status"]]
        latency = f"{r['latency_ms']:.1f} ms" if r["latency_ms"] is not None else "-"
        table.add_row(r["target"], escape(r["url"]), f"[{style}]{r['status']}[/]", latency,
                      escape(r["error"] or r["version"]))
    out.print(table)
    raise typer.Exit(1 if down else 0)
