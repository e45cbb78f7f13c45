"""The base of wellkept's management commands: Django's, with wellkept's exit codes.

Django runs the system checks before a command, and a failed check (a mistake in
``DATABASE_CLEANUP_RULES``, say) would end ``manage.py maintenance`` with Django's exit code 1,
which wellkept's commands use for "a run failed". Nothing ran, so it ends with 2 instead, the
code of a usage or settings error, as in ``wellkept`` itself. Only Django is imported here:
``--help`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, SystemCheckError

#: a usage or settings error: nothing was run (the same code as ``command.EXIT_USAGE``)
EXIT_USAGE = 2


class WellkeptCommand(BaseCommand):
    def check(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().check(*args, **kwargs)
        except SystemCheckError as exc:
            exc.returncode = EXIT_USAGE
            raise
