"""The edge of the Django commands: wellkept's errors become ``CommandError`` here, and only
here (exit code 2 for a usage or config error, nothing having run; 1 for a failure)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.core.management.base import CommandError

from wellkept.contrib.django.base import EXIT_USAGE
from wellkept.contrib.django.conf import DjangoConfig, load
from wellkept.errors import ConfigError, WellkeptError

EXIT_FAILED = 1


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        raise CommandError(str(exc), returncode=EXIT_USAGE) from None
    except WellkeptError as exc:
        raise CommandError(str(exc), returncode=EXIT_FAILED) from None


def load_config() -> DjangoConfig:
    with command_errors():
        return load()


def setup_logging(verbosity: int) -> None:
    """wellkept's log lines on stderr (redacted), at the level ``-v`` asks for, unless the
    project's ``LOGGING`` already gives the ``wellkept`` logger a handler of its own."""
    if logging.getLogger("wellkept").handlers:
        return
    from wellkept.cli.common import State

    # -v 0: errors only; 1 (the default): warnings; 2: what runs; 3: debugging
    State(config=None, output="text", verbose=max(0, verbosity - 1),
          quiet=verbosity == 0).setup_logging()
