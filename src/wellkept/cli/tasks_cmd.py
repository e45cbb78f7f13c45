"""``wellkept tasks [KIND]``: the task kinds, or one kind's documentation and parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from wellkept.cli.common import OutputOption, console, print_json, state_of


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks)


def _default(value: Any) -> Any:
    from wellkept.durations import format_duration

    return format_duration(value) if isinstance(value, timedelta) else value


def _registry(state: Any) -> Any:
    """Built-in and entry-point kinds, plus the config's ``plugins:`` when there is a config
    (none is needed to list the built-in kinds)."""
    from wellkept.config import find_config
    from wellkept.registry import Registry

    registry = Registry.default()
    if find_config(state.config).exists():
        settings = state.settings()
        for module in settings.plugins:
            registry.load_plugin(module, settings.base_dir)
    return registry


def tasks(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Argument(help="show this kind in full")] = None,
    output: OutputOption = None,
) -> None:
    """List task kinds, or show one kind's documentation and parameters."""
    state = state_of(ctx)
    fmt = state.output_for(output)
    registry = _registry(state)
    if kind is None:
        rows: list[dict[str, Any]] = []
        for name in registry.task_names():
            cls = registry.task_class(name)
            rows.append({"kind": name, "summary": cls.summary(),
                         "engines": registry.engines_for(name), "mutating": cls.mutating})
        if fmt == "json":
            print_json(rows)
            return
        from rich.table import Table

        table = Table(title="task kinds (wellkept tasks KIND for details)", title_justify="left")
        for col in ("kind", "summary", "engines", "mutating"):
            table.add_column(col)
        for row in rows:
            table.add_row(row["kind"], row["summary"], ", ".join(row["engines"]),
                          "yes" if row["mutating"] else "no")
        console().print(table)
        return

    cls = registry.task_class(kind)
    params = [{**p, "default": _default(p["default"])} for p in cls.parameters()]
    if fmt == "json":
        print_json({"kind": kind, "summary": cls.summary(), "documentation": cls.documentation(),
                    "engines": registry.engines_for(kind), "mutating": cls.mutating,
                    "default_timeout": _default(cls.default_timeout), "parameters": params})
        return
    from rich.markup import escape
    from rich.table import Table

    from wellkept.config import COMMON_TASK_KEYS

    out = console()
    out.print(f"[bold]{kind}[/] — {escape(cls.summary())}\n")
    paragraphs = cls.documentation().split("\n\n")[1:]
    for paragraph in paragraphs:  # reflowed: the terminal, not the docstring, sets the width
        out.print(escape(" ".join(paragraph.split())) + "\n")
    out.print(f"engines: {', '.join(registry.engines_for(kind)) or '(none installed)'}; "
              f"mutating: {'yes (honours --dry-run)' if cls.mutating else 'no'}; "
              f"default timeout: {_default(cls.default_timeout)}\n")
    table = Table(title="parameters", title_justify="left")
    for col in ("name", "type", "default", "description"):
        table.add_column(col)
    for p in params:
        default = "(required)" if p["required"] else repr(p["default"])
        table.add_row(p["name"], escape(p["type"]), escape(default), escape(p["description"]))
    out.print(table)
    out.print("every task instance also takes: " + ", ".join(COMMON_TASK_KEYS))
