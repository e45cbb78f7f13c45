"""``manage.py start_maintenance_coordinator [--daemon --pidfile PATH]``: wellkept's
coordinator (the same one as ``wellkept serve``) over the Django settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from wellkept.contrib.django.base import WellkeptCommand


class Command(WellkeptCommand):
    help = ("Run the maintenance coordinator: fire the schedules, recover interrupted runs, "
            "run emergency triggers. In the foreground until SIGTERM or Ctrl-C, or detached "
            "with --daemon.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--daemon", action="store_true",
                            help="detach from the terminal and run in the background")
        parser.add_argument("--pidfile", type=Path, metavar="PATH",
                            help="write the coordinator's process id here; refuse to start "
                                 "while a live process holds it")
        parser.add_argument("--logfile", type=Path, metavar="PATH",
                            help="with --daemon: append the coordinator's log here "
                                 "(default: discarded, unless LOGGING sends it elsewhere)")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections

        from wellkept.contrib.django.command import command_errors, load_config, setup_logging
        from wellkept.coordinator.daemon import Daemon

        config = load_config()  # a mistake is reported here, before anything detaches
        pidfile: Path | None = options["pidfile"]
        pidfile = pidfile.resolve() if pidfile else None  # the daemon works in /
        logfile: Path | None = options["logfile"]
        daemon = None
        if options["daemon"]:
            connections.close_all()  # no connection may cross the fork
            daemon = Daemon(logfile.resolve() if logfile else None)
            if not daemon.start():
                if daemon.error:
                    raise CommandError(f"the coordinator did not start: {daemon.error}",
                                       returncode=1)
                self.stdout.write(f"maintenance coordinator started in the background, "
                                  f"pid {daemon.pid}" + (f", pidfile {pidfile}" if pidfile
                                                         else ""))
                return
        setup_logging(max(2, options["verbosity"]))  # a daemon's log says what it did
        with command_errors():
            code = self._serve(config, pidfile, daemon)
        if code:
            raise CommandError(f"the coordinator stopped with status {code}", returncode=code)

    def _serve(self, config: Any, pidfile: Path | None, daemon: Any) -> int:
        from wellkept.contrib.django.connections import DjangoCoordinator, coordinator_engine
        from wellkept.coordinator.pidfile import pidfile as hold_pidfile

        try:
            engine = coordinator_engine(config)
            engine.store.prepare(in_child=True)  # keeps Alembic out of the daemon's memory
            with hold_pidfile(pidfile):
                coordinator = DjangoCoordinator(engine)
                coordinator.start()
                if daemon is not None:
                    daemon.ready()
                return coordinator.serve()
        except Exception as exc:
            if daemon is not None:
                from wellkept.redact import redact

                daemon.failed(redact(str(exc)))
            raise
