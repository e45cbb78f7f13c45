"""``wellkept health`` and ``wellkept metrics``: the state of things now."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from wellkept.cli.common import OutputOption, console, err_console, print_json, state_of

REPORT_KEYS = ("timestamp", "status", "score", "targets", "host", "alerts", "errors")


def register(app: typer.Typer) -> None:
    app.command("health")(health)
    app.command("metrics")(metrics)


def health(ctx: typer.Context, output: OutputOption = None) -> None:
    """Check every target and the host now, concurrently, each within its timeout.

    Runs the `health` task kind (recorded in the history, alerts evaluated): the configured
    instance of that kind if there is one, else the kind with its defaults. Exit 0 when the
    status is healthy or degraded, 1 when it is unhealthy (a target down, a critical alert)."""
    from wellkept.health.check import head_start
    from wellkept.registry import Registry
    from wellkept.tasks.health import HealthParams

    state = state_of(ctx)
    fmt = state.output_for(output)
    settings = state.settings()
    registry = Registry.default()
    configured = [n for n, t in settings.tasks.items() if t.kind == "health"]
    params = settings.tasks[configured[0]].params if configured else HealthParams()
    assert isinstance(params, HealthParams)
    # the targets are checked while the store and the engine load, not after (see health.check)
    head_start(settings, registry, targets=params.targets,
               disks=params.disk_paths(settings.base_dir))
    from wellkept.engine import Engine

    engine = Engine(settings, registry=registry)
    request = engine.resolve(configured[:1] or ["health"])[0]
    record = engine.run_one(request)
    report = {k: record.details[k] for k in REPORT_KEYS if k in record.details}
    if len(report) != len(REPORT_KEYS):  # the check itself broke: say why, as a report
        report = {"timestamp": None, "status": "unhealthy", "score": 0.0, "targets": {},
                  "host": {}, "alerts": [], "errors": [record.message]}
    if fmt == "json":
        print_json(report)
    else:
        _print_report(report)
    raise typer.Exit(1 if record.status.is_failure or report["status"] == "unhealthy" else 0)


def _print_report(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    style = {"healthy": "green", "degraded": "bold yellow", "unhealthy": "bold red"}
    out.print(f"[{style.get(report['status'], 'white')}]{report['status']}[/], "
              f"score {report['score']:g}/100")
    table = Table(title_justify="left")
    for col in ("target", "status", "latency", "details / error"):
        table.add_column(col, overflow="fold")
    colours = {"up": "green", "locked": "yellow", "degraded": "bold yellow", "down": "bold red"}
    for name, row in report["targets"].items():
        latency = f"{row['latency_ms']:.1f} ms" if row.get("latency_ms") is not None else "-"
        details = row.get("details") or {}
        note = row.get("error") if row["status"] == "down" else (
            details.get("degraded") or (f"held by PID {details.get('holder_pid')}"
                                        if row["status"] == "locked" else
                                        details.get("version", "")))
        table.add_row(escape(name), f"[{colours[row['status']]}]{row['status']}[/]", latency,
                      escape(str(note or "")))
    host = report["host"]
    disks = ", ".join(f"{d['path']} {d['percent']:g}%" for d in host.get("disk") or [])
    table.add_row("host", "[green]up[/]", "-",
                  f"cpu {host.get('cpu_percent')}%, memory {host.get('memory_percent')}%, "
                  f"load {' '.join(str(v) for v in host.get('load') or [])}; disks: {disks}")
    out.print(table)
    for alert in report["alerts"]:
        colour = "bold red" if alert["severity"] == "critical" else "yellow"
        out.print(f"[{colour}]{alert['severity']}[/] {escape(alert['name'])}: "
                  f"{escape(alert.get('message', ''))}")
    for error in report["errors"]:
        err_console().print(f"[red]{escape(error)}[/]")


def metrics(
    ctx: typer.Context,
    textfile: Annotated[Path | None, typer.Option(
        "--textfile", metavar="PATH", help="write the exposition to PATH atomically instead "
                                           "of printing it")] = None,
) -> None:
    """Print the Prometheus text exposition of the current state (CONTRACT §5 names)."""
    from wellkept.history.store import HistoryStore
    from wellkept.metrics import exposition, write_textfile

    state = state_of(ctx)
    settings = state.settings()
    store = HistoryStore(settings.state)
    try:
        if textfile is not None:
            write_textfile(settings, store, str(textfile))
        else:
            sys.stdout.write(exposition(settings, store).decode())
    finally:
        store.close()
