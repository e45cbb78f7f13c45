"""``wellkept advise``: recommendations with the reason and the exact statement; --apply runs
chosen ones through the engine (recorded, locked, dry-runnable)."""

from __future__ import annotations

from typing import Annotated

import typer

from wellkept.cli.common import OutputOption, console, print_json, sigterm_interrupts, state_of


def register(app: typer.Typer) -> None:
    app.command("advise")(advise)


def advise(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", metavar="T", help="only this target [default: every target that "
                                            "gives advice]")] = None,
    apply: Annotated[list[str] | None, typer.Option(
        "--apply", metavar="ID", help="apply this recommendation (repeatable)")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="with --apply: show the statements, change nothing")] = False,
    output: OutputOption = None,
) -> None:
    """Show recommendations (id, severity, evidence, reason, statement), or apply chosen ones."""
    from wellkept.engine import Engine
    from wellkept.errors import UsageError

    state = state_of(ctx)
    fmt = state.output_for(output)
    engine = Engine(state.settings())
    targets = [target] if target else engine.targets_supporting("advise")
    if not targets:
        raise UsageError("no target in the config gives advice (PostgreSQL targets do)")
    if apply and len(targets) > 1:
        raise UsageError("--apply needs --target, since advice ids are per target; "
                         f"targets: {', '.join(targets)}")
    if apply:
        requests = [engine.kind_request("apply_advice", targets[0], ids=list(apply))]
    else:
        requests = [engine.kind_request("advise", t) for t in targets]
    with sigterm_interrupts():
        batch = engine.run(requests, dry_run=dry_run)
    if fmt == "json":
        print_json(batch.to_json())
        raise typer.Exit(batch.exit_code)
    from rich.markup import escape
    from rich.table import Table

    from wellkept.cli.render import runs_table, summary_line

    out = console()
    if apply:
        out.print(runs_table(batch.results))
        for record in batch.results:
            for action in record.details.get("actions", []):
                if record.dry_run:
                    mark = "would run"
                elif "error" in action:
                    mark = "failed: " + action["error"]
                else:
                    mark = "done"
                out.print(f"  {escape(action['statement'])}  {escape('[' + mark + ']')}")
        out.print(summary_line(batch))
        raise typer.Exit(batch.exit_code)
    for record in batch.results:
        advice = record.details.get("advice", [])
        if not advice:
            out.print(f"{record.target}: {escape(record.message)}")
            continue
        table = Table(title=f"{record.target}: {record.message}", title_justify="left")
        for col in ("id", "severity", "reason", "statement"):
            table.add_column(col, overflow="fold")
        for a in advice:
            statement = a["statement"] + ("" if a["applicable"] else "  (manual)")
            table.add_row(escape(a["id"]), a["severity"], escape(a["reason"]),
                          escape(statement))
        out.print(table)
    if any(a["applicable"] for r in batch.results for a in r.details.get("advice", [])):
        out.print("apply with: wellkept advise --target T --apply ID [--dry-run]")
    raise typer.Exit(batch.exit_code)
