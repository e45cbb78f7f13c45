"""``wellkept report``: a daily or weekly report in HTML, JSON or CSV."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from wellkept.cli.common import err_console, state_of


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    ctx: typer.Context,
    report_type: Annotated[str, typer.Option(
        "--type", "-t", metavar="daily|weekly",
        help="the last 24 hours or 7 days, against the period before")] = "daily",
    fmt: Annotated[str, typer.Option(
        "--format", "-f", metavar="html|json|csv",
        help="html (with charts, printable), json (the report model), csv (one row per "
             "run)")] = "html",
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="write the report here [default: stdout]")] = None,
    end: Annotated[str | None, typer.Option(
        "--end", metavar="TIME", help="the period's end, ISO 8601 (e.g. "
                                      "2026-11-22T06:00:00Z) [default: now]")] = None,
    no_details: Annotated[bool, typer.Option(
        "--no-details", help="leave out the list of every run (HTML and JSON)")] = False,
) -> None:
    """Write a daily or weekly report: task summary and success rates, durations with their
    trend, rows deleted and bytes freed, failures with their errors, backups against their
    RPO, resource trends, the current advice, and charts."""
    from wellkept.engine import Engine
    from wellkept.errors import UsageError
    from wellkept.reports import REPORT_FORMATS, REPORT_TYPES, build_report, render

    if report_type not in REPORT_TYPES:
        raise UsageError(f"--type: {report_type!r} is not allowed; choose one of: "
                         + ", ".join(REPORT_TYPES))
    if fmt not in REPORT_FORMATS:
        raise UsageError(f"--format: {fmt!r} is not allowed; choose one of: "
                         + ", ".join(REPORT_FORMATS))
    until = _moment(end) if end else None
    engine = Engine(state_of(ctx).settings())
    built = build_report(engine, report_type, end=until,
                         include_details=not no_details)
    text = render(built, fmt)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out: cannot write {out}: {exc.strerror}") from None
    err_console().print(f"wrote the {report_type} report ({fmt}, {len(built.runs)} runs) to "
                        f"{out}")


def _moment(text: str) -> datetime:
    from datetime import UTC

    from wellkept.errors import UsageError

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--end: {text!r} is not an ISO 8601 time, e.g. "
                         "2026-11-22T06:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
