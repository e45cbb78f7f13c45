"""Rich renderings of runs and batches, shared by run, history and demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wellkept.records import RunRecord

if TYPE_CHECKING:
    from rich.table import Table

    from wellkept.engine import RunBatch

STATUS_STYLE = {"completed": "green", "skipped": "yellow", "partial_failure": "bold yellow",
                "failed": "bold red", "running": "cyan", "orphaned": "magenta",
                "dead": "bold red"}


def status_text(status: str, dry_run: bool = False) -> str:
    label = status + (" (dry run)" if dry_run else "")
    return f"[{STATUS_STYLE.get(status, 'white')}]{label}[/]"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def runs_table(records: list[RunRecord], title: str | None = None,
               show_started: bool = False) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    if show_started:
        table.add_column("started (UTC)", no_wrap=True)
    for name in ("task", "target", "status", "took"):
        table.add_column(name, no_wrap=name != "task")
    table.add_column("result", overflow="fold")
    for r in records:
        row = [escape(r.task), escape(r.target), status_text(str(r.status), r.dry_run),
               duration_text(r.duration_seconds), escape(r.message)]
        if show_started:
            row.insert(0, r.started_at.strftime("%Y-%m-%d %H:%M:%S"))
        table.add_row(*row)
    return table


def summary_line(batch: RunBatch) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in batch.counts.items() if n)
    dry = " (dry run: nothing was changed)" if batch.dry_run else ""
    return (f"{status_text(str(batch.status))}: {counts or 'nothing ran'} in "
            f"{duration_text(batch.duration_seconds)}{dry}")


def print_batch(batch: Any, fmt: str) -> None:
    """A finished batch of runs, as JSON or as the runs table and its summary line."""
    from wellkept.cli.common import console, print_json

    if fmt == "json":
        print_json(batch.to_json())
        return
    out = console()
    from rich.markup import escape

    out.print(runs_table(batch.results))
    out.print(summary_line(batch))
    if len(batch.results) > 1:  # with one run the table already says it
        for failure in batch.failures:
            out.print(f"  [red]{failure['status']}[/]: {escape(failure['task'])} on "
                      f"{escape(failure['target'])}: {escape(failure['message'])}")
