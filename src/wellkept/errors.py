"""One exception tree for wellkept.

Library code raises these; only the edges (CLI, API, Celery) turn them into exit codes or HTTP
statuses. ``Unavailable`` and ``ConnectionFailed`` are *expected* conditions (logged as WARNING);
anything outside this tree is a bug (logged as ERROR with a traceback in the history).
"""

from __future__ import annotations


class WellkeptError(Exception):
    """Root of every error wellkept raises on purpose."""

    #: worth another attempt after a pause (the retry middleware honours a task's `retries`)
    transient: bool = False


class ConfigError(WellkeptError):
    """The configuration (file, environment or command line) is invalid. Exit code 2."""

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


class UsageError(ConfigError):
    """The command line asked for something that does not exist. Exit code 2."""


class MissingDependency(WellkeptError):
    """An optional driver or library is not installed; the message says which extra to install."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed. "
            f"Install it with: pip install 'wellkept[{extra}]'"
        )


class ConnectorError(WellkeptError):
    """A problem talking to a target."""


class ConnectionFailed(ConnectorError):
    """The target could not be reached (refused, timed out, authentication failed)."""

    transient = True


class Unavailable(ConnectorError):
    """The target is there but cannot serve us now (locked by another writer, in recovery)."""

    transient = True


class Locked(Unavailable):
    """Another process holds the target for itself (a DuckDB file open read-write by an ingest
    job). That is the target being used, not an outage: runs end ``skipped``, health says
    ``locked``, and the next run does the work."""

    def __init__(self, message: str, holder_pid: int | None = None) -> None:
        self.holder_pid = holder_pid
        super().__init__(message)


class TaskError(WellkeptError):
    """A task could not do its work."""


class TaskFailed(TaskError):
    """The task ran and found a problem it reports as a failure (e.g. a corrupt database)."""


class TaskTimeout(TaskError):
    """The task passed its time limit and was interrupted."""


class NotApplicable(TaskError):
    """The task kind does not apply to this target (the run ends as ``skipped``)."""


class StopRequested(TaskError):
    """Raised by ``ctx.checkpoint`` once the checkpoint is saved, when the run was asked to stop
    at its next checkpoint (the coordinator is shutting down). The run ends as
    ``partial_failure`` and is queued for recovery, which resumes from that checkpoint."""


class Skip(WellkeptError):
    """Raised by a task to end its run as ``skipped`` with the given reason."""


class Retry(WellkeptError):
    """Raised by a task for a transient error worth another attempt."""

    transient = True

    def __init__(self, reason: str, delay_seconds: float | None = None) -> None:
        self.delay_seconds = delay_seconds
        super().__init__(reason)


class StoreError(WellkeptError):
    """The state store cannot be used (unreachable, unwritable, from a newer wellkept)."""


class BrokerUnreachable(WellkeptError):
    """The Celery broker of ``executor.broker`` does not answer (exit code 1 at start)."""


class Terminated(BaseException):
    """SIGTERM arrived while a one-shot command ran tasks in the foreground (the CLI raises it
    in the main thread). Outside the tree on purpose: like KeyboardInterrupt it passes every
    ``except Exception``, so the run is cancelled and recorded as interrupted, not as a task
    error; the CLI then exits 143."""


class LockBusy(WellkeptError):
    """Another holder kept a lock for longer than we were willing to wait."""

    def __init__(self, name: str, holder: str) -> None:
        self.holder = holder
        super().__init__(f"{name} is locked by {holder}")
