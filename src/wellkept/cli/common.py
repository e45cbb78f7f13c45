"""What every command shares: global state, config loading, output and error handling."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from wellkept.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: what a shell reports for a process that Ctrl-C or SIGTERM ended (128 + the signal)
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

OutputOption = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="text|json", help="output format [default: text]")]


@dataclass
class State:
    config: str | None
    output: str
    verbose: int
    quiet: bool
    _logging_ready: bool = False

    def output_for(self, override: str | None) -> str:
        value = (override or self.output or "text").lower()
        if value not in ("text", "json"):
            from wellkept.errors import UsageError

            raise UsageError(f"--output: {value!r} is not allowed; choose one of: text, json")
        return value

    def settings(self) -> Settings:
        from wellkept.config import load_config

        self.setup_logging()
        return load_config(self.config)

    def setup_logging(self) -> None:
        if self._logging_ready:
            return
        self._logging_ready = True
        from wellkept.redact import redact

        level = (logging.ERROR if self.quiet else logging.WARNING if not self.verbose
                 else logging.INFO if self.verbose == 1 else logging.DEBUG)
        handler: logging.Handler
        if sys.stderr.isatty():
            from rich.logging import RichHandler

            handler = RichHandler(console=err_console(), show_path=False, rich_tracebacks=False)
            handler.setFormatter(logging.Formatter("%(message)s"))
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

        class Redact(logging.Filter):
            """Mask secrets in the message and in any traceback attached to it."""

            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redact(record.getMessage())
                record.args = None
                if record.exc_info:
                    record.exc_text = redact(logging.Formatter().formatException(
                        record.exc_info))
                    record.exc_info = None
                elif record.exc_text:
                    record.exc_text = redact(record.exc_text)
                return True

        handler.addFilter(Redact())
        root = logging.getLogger("wellkept")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False


def state_of(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextlib.contextmanager
def fail_on_errors() -> Iterator[None]:
    """Turn wellkept's errors into messages and exit codes (the CLI's only error edge)."""
    from wellkept.errors import ConfigError, Terminated, WellkeptError

    try:
        yield
    except ConfigError as exc:
        error_line(str(exc))
        sys.exit(EXIT_USAGE)
    except WellkeptError as exc:
        error_line(str(exc))
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        error_line("terminated")
        sys.exit(EXIT_TERMINATED)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While a command runs tasks in the foreground, SIGTERM (systemd stopping a unit,
    ``timeout``, Kubernetes, a cron daemon) stops them the way Ctrl-C does: ``Terminated`` is
    raised in the main thread, so the run is cancelled, its statement cancelled on the server,
    the task gets its grace to stop at a checkpoint and the run is recorded. Otherwise SIGTERM
    kills the process at once and its row stays ``running`` until a later run finds it dead.

    Only the first SIGTERM counts: a repeated one must not cut short the grace or the write of
    the record (SIGKILL still ends the process at once)."""
    import signal
    import threading

    from wellkept.errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    seen = threading.Event()

    def terminate(signum: int, frame: object) -> None:
        if not seen.is_set():
            seen.set()
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def error_line(text: str) -> None:
    """``error: …`` on stderr, one line per line of ``text``, secrets masked."""
    from wellkept.redact import redact

    for line in redact(text).splitlines():
        sys.stderr.write(f"error: {line}\n")
