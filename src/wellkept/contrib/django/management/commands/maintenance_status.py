"""``manage.py maintenance_status [--schedules] [--format json]``: the status report of
``wellkept status``, read from the history."""

from __future__ import annotations

import json
from typing import IO, Any, cast

from django.core.management.base import CommandParser

from wellkept.contrib.django.base import WellkeptCommand


class Command(WellkeptCommand):
    help = ("The maintenance coordinator's state, the runs in progress, the last result of "
            "every task on each target and recovery health, read from wellkept's history "
            "(whether or not a coordinator runs).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schedules", action="store_true",
                            help="also list the schedules with their next fire times")
        parser.add_argument("--format", choices=("text", "json"), default="text",
                            help="text (default) or json")

    def handle(self, *args: Any, **options: Any) -> None:
        from wellkept.contrib.django.command import command_errors, load_config
        from wellkept.engine import Engine
        from wellkept.status import status_report

        config = load_config()
        with command_errors():
            engine = Engine(config.settings)
            try:
                report = status_report(engine, with_schedules=options["schedules"])
            finally:
                engine.store.close()
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        from rich.console import Console

        from wellkept.cli.status_cmd import print_status

        stream = cast(IO[str], self.stdout)
        # a terminal gets its own width; a file or pipe gets lines long enough not to fold
        out = Console(file=stream, highlight=False, soft_wrap=False,
                      width=None if stream.isatty() else 200,
                      no_color=options.get("no_color", False))
        print_status(report, out)
