"""``wellkept backup``, ``wellkept backups list|verify`` and ``wellkept restore``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from wellkept.cli.common import (
    OutputOption,
    console,
    err_console,
    print_json,
    sigterm_interrupts,
    state_of,
)

backups_app = typer.Typer(help="The backups catalog: list backups, verify one.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.add_typer(backups_app, name="backups")
    backups_app.command("list")(list_backups)
    backups_app.command("verify")(verify_backup)
    app.command("restore")(restore)


def _run_and_exit(ctx: typer.Context, requests: list[Any], fmt: str, dry_run: bool) -> None:
    from wellkept.cli.render import print_batch
    from wellkept.engine import Engine

    engine = Engine(state_of(ctx).settings())
    with sigterm_interrupts():
        batch = engine.run(requests, dry_run=dry_run)
    print_batch(batch, fmt)
    raise typer.Exit(batch.exit_code)


def backup(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="TARGET", help="the target to back up")],
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n",
                                          help="report what would be done")] = False,
    output: OutputOption = None,
) -> None:
    """Back up one target now: its configured backup task, or the built-in defaults."""
    from wellkept.engine import Engine

    state = state_of(ctx)
    settings = state.settings()
    engine = Engine(settings)
    configured = [name for name, t in settings.tasks.items()
                  if t.kind == "backup" and (t.target == target or target in t.targets)]
    requests = engine.resolve(configured[:1], target=target) if configured else \
        engine.resolve(["backup"], target=target)
    _run_and_exit(ctx, requests, state.output_for(output), dry_run)


def list_backups(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target", "-t", metavar="T",
                                               help="only this target's backups")] = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="first re-read the manifests in every configured destination")] = False,
    pruned: Annotated[bool, typer.Option("--pruned", help="include pruned backups")] = False,
    output: OutputOption = None,
) -> None:
    """List the backups in the catalog, newest first."""
    from wellkept.backups import catalog
    from wellkept.backups.storage import open_storage
    from wellkept.history.store import HistoryStore

    state = state_of(ctx)
    settings = state.settings()
    store = HistoryStore(settings.state)
    added: list[str] = []
    if rebuild:
        seen = set()
        for task in settings.tasks.values():
            if task.kind != "backup" or (target and task.target != target):
                continue
            dest = str(getattr(task.params, "destination", "backups/"))
            if dest in seen:
                continue
            seen.add(dest)
            added += catalog.rebuild(store, open_storage(dest, settings.base_dir),
                                     prefix=target or "")
    found = catalog.entries(store, target, include_pruned=pruned)
    if state.output_for(output) == "json":
        print_json({"backups": [e.to_json() for e in found], "rebuilt": added})
        return
    _print_table(found, added)


def _print_table(found: list[Any], added: list[str]) -> None:
    from rich.table import Table

    from wellkept.units import human_bytes

    out = console()
    if added:
        out.print(f"catalogued {len(added)} backup(s) found in storage")
    if not found:
        out.print("no backups in the catalog (run `wellkept backup TARGET`, or "
                  "`wellkept backups list --rebuild` to read the manifests in storage)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "target", "format", "created", "size", "verified", "restore"):
        table.add_column(column, no_wrap=column in ("id", "created"))
    for e in found:
        m = e.manifest
        verified = f"{e.verify_status} ({e.verify_tier})" if e.verify_status else "never"
        restore = f"{e.restore_seconds:.1f}s" if e.restore_seconds is not None else "-"
        table.add_row(m.id, m.target, m.format + (" +age" if m.encrypted else ""),
                      m.finished_at, human_bytes(m.stored_bytes), verified, restore)
    out.print(table)


def verify_backup(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="a backup id from the list")],
    tier: Annotated[str, typer.Option("--tier", help="checksum | readable | restore")
                    ] = "restore",
    output: OutputOption = None,
) -> None:
    """Verify one backup (recorded as a verify_backup run and on the backup)."""
    from wellkept.backups import catalog
    from wellkept.engine import Engine
    from wellkept.errors import UsageError
    from wellkept.history.store import HistoryStore

    state = state_of(ctx)
    settings = state.settings()
    if tier not in ("checksum", "readable", "restore"):
        raise UsageError(f"--tier: {tier!r}; choose checksum, readable or restore")
    entry = catalog.get(HistoryStore(settings.state), backup_id)
    if entry is None:
        raise UsageError(f"no backup {backup_id!r} in the catalog; see `wellkept backups list`")
    target = entry.manifest.target
    if target not in settings.targets:
        raise UsageError(f"backup {backup_id} is of target {target!r}, which the config no "
                         "longer defines (it is needed for the scratch database)")
    extra: dict[str, Any] = {}
    task = settings.tasks.get(entry.manifest.task)
    if task is not None:  # the backing-up task's keys for decrypting and smoke queries
        for key in ("age_identity_file", "smoke_queries", "jobs"):
            value = getattr(task.params, key, None)
            if value:
                extra[key] = value
    engine = Engine(settings)
    request = engine.kind_request("verify_backup", target, backup_id=backup_id, tier=tier,
                                  **extra)
    _run_and_exit(ctx, [request], state.output_for(output), dry_run=False)


def restore(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(metavar="ID", help="a backup id from the list")],
    into: Annotated[str, typer.Option("--into", metavar="URL",
                                      help="the database to restore into (PostgreSQL, "
                                           "MySQL: it must exist, or use --create; SQLite, "
                                           "DuckDB: created when missing)")],
    create: Annotated[bool, typer.Option("--create",
                                         help="create the database first (refused if it "
                                              "exists)")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y",
                                      help="restore even over a database that is not empty")
                   ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64,
                                      help="parallel jobs (PostgreSQL directory format)")] = 1,
    output: OutputOption = None,
) -> None:
    """Restore a backup into URL, then check its row counts against the manifest."""
    from wellkept.backups.restore import restore_backup

    state = state_of(ctx)
    settings = state.settings()
    fmt = state.output_for(output)
    # SIGTERM (systemd, `timeout`) stops it like Ctrl-C: what --create made is dropped again
    with sigterm_interrupts():
        report = restore_backup(settings, backup_id, into, replace=yes, jobs=jobs,
                                create=create, progress=None if state.quiet or fmt == "json"
                                else err_console().print)
    if fmt == "json":
        print_json(report)
    else:
        console().print(report["message"])
    raise typer.Exit(0 if report["passed"] else 1)
