"""``wellkept dashboard``: the web dashboard's information as a live Rich view in the terminal."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wellkept.cli.common import console, state_of

if TYPE_CHECKING:
    from rich.console import RenderableType

BLOCKS = "▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    ctx: typer.Context,
    refresh: Annotated[float, typer.Option(
        "--refresh", "-r", min=0.5, max=3600, metavar="N",
        help="seconds between refreshes")] = 5.0,
    days: Annotated[int, typer.Option("--days", min=1, max=90,
                                      help="days of history in the trends")] = 7,
    once: Annotated[bool, typer.Option("--once", help="print the view once and exit")] = False,
) -> None:
    """A live view of the health of each target and the host, running runs with their
    progress, recent results (failures first), active alerts, schedules and trends. Ctrl-C
    quits."""
    from rich.live import Live

    from wellkept.engine import Engine
    from wellkept.overview import overview

    engine = Engine(state_of(ctx).settings())
    out = console()
    if once:
        out.print(render(overview(engine, days=days)))
        return
    try:
        with Live(render(overview(engine, days=days)), console=out, screen=False,
                  auto_refresh=False) as live:
            while True:
                time.sleep(refresh)
                live.update(render(overview(engine, days=days)), refresh=True)
    except KeyboardInterrupt:
        return


def sparkline(values: list[float], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BLOCKS[int((v - low) / span * (len(BLOCKS) - 1))] for v in values)


def short(moment: str | None) -> str:
    """``2026-11-22T02:00:00.000Z`` as ``11-22 02:00:00`` (the view is narrow; all UTC)."""
    return moment[5:19].replace("T", " ") if moment else "-"


def render(data: dict[str, Any]) -> RenderableType:
    """The overview (``wellkept.overview``) as Rich renderables, top to bottom."""
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from wellkept.cli.render import STATUS_STYLE, duration_text, status_text

    parts: list[RenderableType] = []
    health = data["health"]
    coord = data["coordinator"]
    head = (f"health: {status_text(health['status'])} score {health['score']:g}"
            if health else "health: [dim]no health check yet[/]")
    running = "[green]running[/]" if coord["running"] else "[yellow]not running[/]"
    head += (f"   coordinator: {running}   recovery: {data['recovery']['overall_health']}"
             f"   alerts: {len(data['alerts'])}   {short(data['generated_at'])} UTC")
    parts.append(Panel(head, title="wellkept", title_align="left"))
    if data["failures"]:
        table = Table(title="[bold red]failures (24h)[/]", title_justify="left", expand=True)
        for col in ("started", "task", "target", "status", "message"):
            table.add_column(col, overflow="fold")
        for f in data["failures"]:
            table.add_row(short(f["started_at"]), escape(f["task"]), escape(f["target"]),
                          status_text(f["status"]), escape(f["message"]))
        parts.append(table)
    if health:
        table = Table(title="targets and host", title_justify="left", expand=True)
        for col in ("target", "status", "latency", "details"):
            table.add_column(col, overflow="fold")
        for name, t in health["targets"].items():
            colour = STATUS_STYLE.get({"up": "completed", "down": "failed"}.get(
                t["status"], "skipped"), "white")
            table.add_row(escape(name), f"[{colour}]{t['status']}[/]",
                          f"{t['latency_ms']:.1f} ms" if t.get("latency_ms") is not None
                          else "-", escape(str(t.get("error") or "")))
        host = health.get("host") or {}
        disks = ", ".join(f"{d['path']} {d['percent']:g}%" for d in host.get("disk") or [])
        table.add_row("host", "[green]up[/]", "-", f"cpu {host.get('cpu_percent')}%, memory "
                      f"{host.get('memory_percent')}%; disks: {disks}")
        parts.append(table)
    if data["running"]:
        table = Table(title="running", title_justify="left", expand=True)
        for col in ("task", "target", "trigger", "started", "progress", "checkpoint"):
            table.add_column(col, overflow="fold")
        for r in data["running"]:
            pct = "-" if r["progress_percent"] is None else f"{r['progress_percent']:.0f}%"
            cp = r.get("checkpoint")
            table.add_row(escape(r["task"]), escape(r["target"]), r["trigger"],
                          short(r["started_at"]),
                          f"{pct} {escape(r['progress_step'] or '')}",
                          f"{escape(cp['name'])} {cp['percent']:.0f}%" if cp else "-")
        parts.append(table)
    if data["alerts"]:
        table = Table(title="active alerts", title_justify="left", expand=True)
        for col in ("severity", "alert", "target", "since", "message"):
            table.add_column(col, overflow="fold")
        for a in data["alerts"]:
            table.add_row(a["severity"], escape(a["name"]), escape(a["target"]), short(a["since"]),
                          escape(a["message"]))
        parts.append(table)
    if data["schedules"]:
        table = Table(title="schedules", title_justify="left", expand=True)
        for col in ("schedule", "cron", "state", "next fire", "last status"):
            table.add_column(col, overflow="fold")
        for s in data["schedules"]:
            state = ("[yellow]paused[/]" if s["paused"] else "[green]active[/]") \
                if s["enabled"] else "[dim]disabled[/]"
            table.add_row(escape(s["id"]), escape(s["cron"]), state, short(s["next_fire_at"]),
                          s["last_status"] or "-")
        parts.append(table)
    table = Table(title="recent results", title_justify="left", expand=True)
    for col in ("started", "task", "target", "status", "took", "message"):
        table.add_column(col, overflow="fold")
    for r in data["recent"]:
        table.add_row(short(r["started_at"]), escape(r["task"]), escape(r["target"]),
                      status_text(r["status"], r["dry_run"]), duration_text(r["duration_seconds"]),
                      escape(r["message"]))
    parts.append(table)
    charts = data.get("charts")
    if charts is not None:
        table = Table(title="trends", title_justify="left", expand=True, show_header=False)
        table.add_column("what")
        table.add_column("trend")
        lines = [(f"duration {s.name}", s) for s in charts.durations] + \
            [("health score", s) for s in charts.health_score] + \
            [(f"size {s.name}", s) for s in charts.database_size]
        for label, series in lines:
            values = [v for _, v in series.points]
            table.add_row(escape(label), f"{sparkline(values)}  {values[-1]:g}")
        freed = [float(d["rows_deleted"]) for d in charts.freed_per_day]
        if any(freed):
            table.add_row("rows deleted per day", f"{sparkline(freed)}  {sum(freed):g} in all")
        parts.append(table)
    return Group(*parts)
