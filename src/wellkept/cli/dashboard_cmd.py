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


def table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> Any:
    """One section of the view: a titled table, cells already escaped and styled."""
    from rich.table import Table

    out = Table(title=title, title_justify="left", expand=True)
    for col in columns:
        out.add_column(col, overflow="fold")
    for row in rows:
        out.add_row(*row)
    return out


def render(data: dict[str, Any]) -> RenderableType:
    """The overview (``wellkept.overview``) as Rich renderables, top to bottom."""
    from rich.console import Group
    from rich.markup import escape as e
    from rich.panel import Panel

    from wellkept.cli.render import STATUS_STYLE, duration_text, status_text
    from wellkept.reports.render import target_detail

    health, coord = data["health"], data["coordinator"]
    head = (f"health: {status_text(health['status'])} score {health['score']:g}"
            if health else "health: [dim]no health check yet[/]")
    running = "[green]running[/]" if coord["running"] else "[yellow]not running[/]"
    head += (f"   coordinator: {running}   recovery: {data['recovery']['overall_health']}"
             f"   alerts: {len(data['alerts'])}   {short(data['generated_at'])} UTC")
    parts: list[RenderableType] = [Panel(head, title="wellkept", title_align="left")]
    if data["failures"]:
        shown, count = len(data["failures"]), data.get("failures_24h", len(data["failures"]))
        more = f" (the newest {shown} of {count})" if count > shown else ""
        parts.append(table(f"[bold red]failures (24h)[/]{more}",
                           ("started", "task", "target", "status", "message"),
                           [[short(f["started_at"]), e(f["task"]), e(f["target"]),
                             status_text(f["status"]), e(f["message"])]
                            for f in data["failures"]]))
    if health:
        colour = {"up": STATUS_STYLE["completed"], "down": STATUS_STYLE["failed"]}
        rows = [[e(name), f"[{colour.get(t['status'], 'yellow')}]{t['status']}[/]",
                 f"{t['latency_ms']:.1f} ms" if t.get("latency_ms") is not None else "-",
                 e(target_detail(t))] for name, t in health["targets"].items()]
        host = health.get("host") or {}
        disks = ", ".join(f"{d['path']} {d['percent']:g}%" for d in host.get("disk") or [])
        rows.append(["host", "[green]up[/]", "-", f"cpu {host.get('cpu_percent')}%, memory "
                     f"{host.get('memory_percent')}%; disks: {disks}"])
        parts.append(table("targets and host", ("target", "status", "latency", "details"),
                           rows))
    if data["running"]:
        parts.append(table("running", ("task", "target", "trigger", "started", "progress",
                                       "checkpoint"), [_running_row(r) for r in data["running"]]))
    if data["alerts"]:
        parts.append(table("active alerts", ("severity", "alert", "target", "since", "message"),
                           [[a["severity"], e(a["name"]), e(a["target"]), short(a["since"]),
                             e(a["message"])] for a in data["alerts"]]))
    if data["schedules"]:
        parts.append(table("schedules", ("schedule", "cron", "state", "next fire",
                                         "last status"),
                           [[e(s["id"]), e(s["cron"]), _state(s),
                             "[dim]paused[/]" if s["paused"] else short(s["next_fire_at"]),
                             s["last_status"] or "-"] for s in data["schedules"]]))
    if data.get("charts") is not None:
        parts.append(_trends(data["charts"]))
    # last, unlike on the web page: the live view crops what does not fit the terminal, and
    # this open-ended list is what a short terminal can best do without
    parts.append(table("recent results", ("started", "task", "target", "status", "took",
                                          "message"),
                       [[short(r["started_at"]), e(r["task"]), e(r["target"]),
                         status_text(r["status"], r["dry_run"]),
                         duration_text(r["duration_seconds"]), e(r["message"])]
                        for r in data["recent"]]))
    return Group(*parts)


def _running_row(run: dict[str, Any]) -> list[str]:
    from rich.markup import escape

    pct = "-" if run["progress_percent"] is None else f"{run['progress_percent']:.0f}%"
    cp = run.get("checkpoint")
    return [escape(run["task"]), escape(run["target"]), run["trigger"],
            short(run["started_at"]), f"{pct} {escape(run['progress_step'] or '')}",
            f"{escape(cp['name'])} {cp['percent']:.0f}%" if cp else "-"]


def _state(schedule: dict[str, Any]) -> str:
    if not schedule["enabled"]:
        return "[dim]disabled[/]"
    return "[yellow]paused[/]" if schedule["paused"] else "[green]active[/]"


def _trends(charts: Any) -> Any:
    """The charts as sparklines, each with its last value."""
    from rich.markup import escape
    from rich.table import Table

    from wellkept.units import human_bytes

    out = Table(title="trends", title_justify="left", expand=True, show_header=False)
    out.add_column("what")
    out.add_column("trend")
    lines = [(f"duration {s.name}", s) for s in charts.durations] + \
        [("health score", s) for s in charts.health_score] + \
        [(f"size {s.name}", s) for s in charts.database_size]
    for label, series in lines:
        values = [v for _, v in series.points]
        out.add_row(escape(label), f"{sparkline(values)}  {values[-1]:g}")
    freed = [float(d["rows_deleted"]) for d in charts.freed_per_day]
    if any(freed):
        out.add_row("rows deleted per day", f"{sparkline(freed)}  {sum(freed):g} in all")
    freed_bytes = [float(d["bytes_freed"]) for d in charts.freed_per_day]
    if any(freed_bytes):
        out.add_row("bytes freed per day",
                    f"{sparkline(freed_bytes)}  {human_bytes(sum(freed_bytes))} in all")
    return out
