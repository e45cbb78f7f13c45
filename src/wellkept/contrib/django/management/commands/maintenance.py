"""``manage.py maintenance``: the nine maintenance operations on one database."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser, DjangoHelpFormatter
from django.db import DEFAULT_DB_ALIAS

from wellkept.contrib.django.base import WellkeptCommand
from wellkept.contrib.django.operations import OPERATIONS, PROFILES

HELP = ("Run database maintenance operations (vacuum, reindex, cleanup, logs, sessions, views, "
        "stats, bloat, backup) on one database, recorded in wellkept's history.")


class Command(WellkeptCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        epilog = "operations:\n" + "\n".join(f"  {op.name:<10}{op.label}"
                                             for op in OPERATIONS.values())
        epilog += "\n\nschedules:\n" + "\n".join(f"  {name:<10}{', '.join(ops)}"
                                                for name, ops in PROFILES.items())
        return super().create_parser(prog_name, subcommand, epilog=epilog,
                                     formatter_class=_Formatter, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--operation", action="append", dest="operations",
                            choices=list(OPERATIONS), metavar="OPERATION", default=[],
                            help="an operation to run (repeatable; they run in the order "
                                 "given): " + ", ".join(OPERATIONS))
        parser.add_argument("--all", action="store_true", dest="all_operations",
                            help="run all nine operations, one after another")
        parser.add_argument("--schedule", choices=list(PROFILES),
                            help="run the operations of this cadence (see below)")
        parser.add_argument("--dry-run", action="store_true",
                            help="say exactly what each operation would do; change nothing")
        parser.add_argument("--output", choices=("text", "json"), default="text",
                            help="text (default) or json")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='the DATABASES alias to maintain (default: "default")')

    def handle(self, *args: Any, **options: Any) -> None:
        from wellkept.contrib.django.command import command_errors, load_config, setup_logging
        from wellkept.contrib.django.operations import expand
        from wellkept.contrib.django.report import record_line, summary_line, to_json
        from wellkept.contrib.django.runner import run_maintenance
        from wellkept.records import RunRecord

        operations = expand(options["operations"], everything=options["all_operations"],
                            profile=options["schedule"])
        if not operations:
            raise CommandError("say what to run: --operation NAME (repeatable), --all, or "
                               "--schedule daily|weekly|monthly; operations: "
                               + ", ".join(OPERATIONS), returncode=2)
        if options["verbosity"] > 1:
            setup_logging(options["verbosity"])
        text = options["output"] == "text"

        def progress(operation: str, record: RunRecord) -> None:
            if text and options["verbosity"] > 0:
                self._write(record_line(operation, record))

        config = load_config()
        with command_errors():
            run = run_maintenance(config, operations, database=options["database"],
                                  dry_run=options["dry_run"], on_record=progress)
        if text:
            self._write([summary_line(run)])
        else:
            self.stdout.write(json.dumps(to_json(run), indent=2, default=str))
        if run.failed:
            raise CommandError(f"{len(run.failed)} of {len(run.outcomes)} operation(s) failed: "
                               + ", ".join(o.operation for o in run.failed), returncode=1)

    def _write(self, lines: list[tuple[str, str]]) -> None:
        for style, line in lines:
            self.stdout.write(getattr(self.style, style)(line) if style else line)


class _Formatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written, and Django's help ordering."""
