"""``wellkept status`` and ``wellkept schedule list|pause|resume|trigger``.

They read and write the store only, so they work whether or not a coordinator is running. A
trigger goes to the running coordinator as a request; with none running, it runs here, now.
"""

from __future__ import annotations

import getpass
import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wellkept.cli.common import OutputOption, console, print_json, sigterm_interrupts, state_of

if TYPE_CHECKING:
    from rich.console import Console

schedule_app = typer.Typer(help="List, pause, resume or trigger schedules.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.add_typer(schedule_app, name="schedule")


def status(
    ctx: typer.Context,
    with_schedules: Annotated[bool, typer.Option(
        "--schedules", "-s", help="also list the schedules and their next fire times")] = False,
    output: OutputOption = None,
) -> None:
    """Coordinator state, running tasks, the last result per task and target, recovery health."""
    from wellkept.engine import Engine
    from wellkept.status import status_report

    state = state_of(ctx)
    fmt = state.output_for(output)
    report = status_report(Engine(state.settings()), with_schedules=with_schedules)
    if fmt == "json":
        print_json(report)
        return
    print_status(report)


@schedule_app.command("list")
def schedule_list(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every schedule: cron, next fire, last fire and outcome, paused or not."""
    from wellkept.engine import Engine
    from wellkept.status import schedule_rows

    state = state_of(ctx)
    fmt = state.output_for(output)
    rows = schedule_rows(Engine(state.settings()))
    if fmt == "json":
        print_json(rows)
        return
    console().print(_schedules_table(rows))


@schedule_app.command("pause")
def schedule_pause(ctx: typer.Context,
                   name: Annotated[str, typer.Argument(metavar="ID", help="the schedule")],
                   output: OutputOption = None) -> None:
    """Pause a schedule: its slots are recorded as skipped (paused) until it is resumed."""
    _set_paused(ctx, name, True, output)


@schedule_app.command("resume")
def schedule_resume(ctx: typer.Context,
                    name: Annotated[str, typer.Argument(metavar="ID", help="the schedule")],
                    output: OutputOption = None) -> None:
    """Resume a paused schedule from its next slot (paused slots are not caught up)."""
    _set_paused(ctx, name, False, output)


@schedule_app.command("trigger")
def schedule_trigger(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="ID", help="the schedule")],
    wait: Annotated[bool, typer.Option(
        "--wait", help="with a coordinator running: wait until its runs end")] = False,
    output: OutputOption = None,
) -> None:
    """Run a schedule's tasks now (trigger manual): through the running coordinator if there
    is one, else in this process."""
    from wellkept.engine import Engine
    from wellkept.history import coordination
    from wellkept.status import coordinator_state

    state = state_of(ctx)
    fmt = state.output_for(output)
    engine = Engine(state.settings())
    _known(engine, name)
    coord = coordinator_state(engine)
    if not coord["running"]:
        from wellkept.cli.render import print_batch

        with sigterm_interrupts():
            batch = engine.run(engine.resolve(schedule=name))
        print_batch(batch, fmt)
        raise typer.Exit(batch.exit_code)
    request_id = coordination.add_request(engine.store, "schedule", name, "manual",
                                          datetime.now(UTC), _who())
    leader = (coord["leader"] or {}).get("id", "?")
    result: dict[str, Any] = {"request_id": request_id, "schedule": name,
                              "coordinator": leader, "queued": True}
    if wait:
        row = _wait_for(engine, request_id)
        result.update({"status": row["status"], "run_ids": row["run_ids"]})
    if fmt == "json":
        print_json(result)
    else:
        text = f"queued {name} for coordinator {leader} (request {request_id})"
        if wait:
            text += f": {result['status']}, runs {', '.join(r[:8] for r in result['run_ids'])}"
        console().print(text)
    # anything but completed or skipped is a failure: failed, partial_failure, and orphaned
    # (the coordinator that took the request died, and another one ended it)
    raise typer.Exit(1 if wait and result["status"] not in ("completed", "skipped") else 0)


def _wait_for(engine: Any, request_id: int) -> dict[str, Any]:
    """The request once it has ended. Should every coordinator stop first (one that died on
    another machine shows as gone once its heartbeat is older than ``leader_lease``), the wait
    ends with an error instead of lasting for ever: a request nobody took is withdrawn (so
    that no coordinator started later runs it behind the user's back); one a dead coordinator
    took is ended as ``orphaned`` by the next coordinator, which recovers its runs."""
    from wellkept.errors import WellkeptError
    from wellkept.history import coordination
    from wellkept.status import coordinator_state

    lease = engine.settings.coordinator.leader_lease.total_seconds()
    checked = time.monotonic()
    gone_since: float | None = None
    while True:
        row = coordination.get_request(engine.store, request_id)
        assert row is not None
        if row["finished_at"] is not None:
            return row
        if time.monotonic() - checked >= 2.0:
            checked = time.monotonic()
            # gone on every look for a whole lease: not a coordinator restarting, nor a late
            # heartbeat, nor one machine's clock a little ahead of another's
            if coordinator_state(engine)["running"]:
                gone_since = None
            elif gone_since is None:
                gone_since = checked
            if gone_since is not None and checked - gone_since >= lease:
                if coordination.withdraw_request(engine.store, request_id, datetime.now(UTC)):
                    raise WellkeptError(f"no coordinator is running any more; request "
                                        f"{request_id} was withdrawn before any run started")
                row = coordination.get_request(engine.store, request_id)
                if row is not None and row["finished_at"] is None:
                    raise WellkeptError(
                        f"the coordinator that took request {request_id} stopped before it "
                        "ended; the next coordinator to start recovers its runs (see "
                        "`wellkept status`)")
                continue
        time.sleep(0.5)


def _set_paused(ctx: typer.Context, name: str, paused: bool, output: str | None) -> None:
    from wellkept.engine import Engine
    from wellkept.history import schedules

    state = state_of(ctx)
    fmt = state.output_for(output)
    engine = Engine(state.settings())
    _known(engine, name)
    changed = schedules.set_paused(engine.store, name, paused, datetime.now(UTC), _who())
    if fmt == "json":
        print_json({"schedule": name, "paused": paused, "changed": changed})
        return
    verb = "paused" if paused else "resumed"
    console().print(f"{verb} {name}" if changed else f"{name} was already {verb}")


def _known(engine: Any, name: str) -> None:
    from wellkept.errors import UsageError

    if name not in engine.settings.schedules:
        raise UsageError(f"unknown schedule {name!r}; defined schedules: "
                         + (", ".join(sorted(engine.settings.schedules)) or "(none)"))


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}"


# --- rendering ----------------------------------------------------------------------------------


def print_status(report: dict[str, Any], out: Console | None = None) -> None:
    """``status_report`` as text, on ``out`` (the terminal by default; the Django command
    gives its own stdout)."""
    from rich.markup import escape
    from rich.table import Table

    from wellkept.cli.render import status_text

    out = out or console()
    coord = report["coordinator"]
    if coord["running"]:
        leader = coord["leader"]
        out.print(f"coordinator: [green]running[/] ({len(coord['instances'])} process(es)); "
                  + (f"leader {leader['id'][:8]} pid {leader['pid']} on {leader['host']} since "
                     f"{leader['since']}" if leader else "no leader yet")
                  + f"; scheduler last ticked {coord['last_tick_at']}")
    else:
        seen = coord["last_seen"]
        out.print("coordinator: [yellow]not running[/]"
                  + (f" (last seen {seen['heartbeat_at']}, {seen['state']})" if seen else ""))
    rec = report["recovery"]
    h, m = rec["health"], rec["metrics"]
    out.print(f"recovery: {h['overall_health']}; queue {h['recovery_queue_depth']}, orphaned "
              f"{h['orphaned_task_count']}, stuck {h['stuck_task_count']}, failures (24h) "
              f"{h['recent_failure_count']}, recoveries (24h) {m['total_recovery_attempts_24h']}"
              + (f", success {m['recovery_success_rate_24h']}%"
                 if m["recovery_success_rate_24h"] is not None else ""))
    if report["running"]:
        table = Table(title="running", title_justify="left")
        for col in ("run", "task", "target", "trigger", "started", "progress", "host/pid"):
            table.add_column(col, overflow="fold")
        for r in report["running"]:
            progress = "-" if r["progress_percent"] is None else f"{r['progress_percent']:.0f}%"
            if r["progress_step"]:
                progress += f" {r['progress_step']}"
            table.add_row(r["run_id"][:8], escape(r["task"]), escape(r["target"]), r["trigger"],
                          r["started_at"], escape(progress), f"{r['host']}/{r['pid']}")
        out.print(table)
    if report["last_results"]:
        table = Table(title="last result per task and target", title_justify="left")
        for col in ("task", "target", "status", "trigger", "finished", "result"):
            table.add_column(col, overflow="fold")
        for r in report["last_results"]:
            table.add_row(escape(r["task"]), escape(r["target"]), status_text(r["status"]),
                          r["trigger"], r["finished_at"] or "-", escape(r["message"] or ""))
        out.print(table)
    if "schedules" in report:
        out.print(_schedules_table(report["schedules"]))


def _schedules_table(rows: list[dict[str, Any]]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="schedules", title_justify="left")
    for col in ("schedule", "cron", "state", "next fire", "last fire", "last status",
                "missed/skipped 24h", "tasks"):
        table.add_column(col, overflow="fold")
    for r in rows:
        state = ("[yellow]paused[/]" if r["paused"] else "[green]active[/]") \
            if r["enabled"] else "[dim]disabled[/]"
        table.add_row(r["id"], escape(r["cron"]) + (f" ({escape(r['window'])})"
                                                    if r["window"] else ""),
                      state, "[dim]paused[/]" if r["paused"] else r["next_fire_at"] or "-",
                      r["last_fire_at"] or "-",
                      r["last_status"] or "-", f"{r['missed_24h']}/{r['skipped_24h']}",
                      escape(", ".join(r["tasks"])))
    return table
