"""The connector contract: how wellkept talks to one kind of target.

A connector is the only place that knows a driver and an SQL dialect. Tasks ask for capabilities
(the Protocols below) and never check an engine's name. A connector opens lazily, is used by one
run at a time, and is closed by the engine when the run ends.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from wellkept.records import Action, Metrics
from wellkept.units import plural

if TYPE_CHECKING:
    from wellkept.config import TargetSettings


@dataclass(frozen=True)
class Ping:
    """The answer to a health ping.

    ``details`` may carry the figures a health check compares with the alert thresholds
    (``connection_percent``, ``query_seconds``, ``replication_lag_seconds``), ``locked`` with
    ``holder_pid`` for a target another process holds, and ``degraded`` with the reason when the
    target answers but cannot serve fully (Redis loading its dataset)."""

    latency_ms: float
    version: str = ""
    details: dict[str, Any] = field(default_factory=dict)


#: one sample of an exporter-compatible metric: family name, help, labels, value
ExporterSample = tuple[str, str, dict[str, str], float]


class Connector(ABC):
    """Base class for connectors. Subclasses set ``name`` and implement ``ping``/``close``."""

    name: ClassVar[str] = ""
    #: one line for `wellkept tasks` and the docs
    summary: ClassVar[str] = ""
    #: for network engines: the port assumed when the URL names none (used by ``identity``)
    default_port: ClassVar[int | None] = None
    #: the Python module of the engine's driver (see ``load_driver``)
    driver: ClassVar[str | None] = None

    def __init__(self, target_name: str, settings: TargetSettings) -> None:
        self.target_name = target_name
        self.settings = settings

    def load_driver(self) -> None:
        """Import the driver now, before a run's record starts. The first run of a process
        on this engine would otherwise count the import (0.1-0.2 s for psycopg) as its own
        time, and look slower than the same run in a warm worker; ``health`` does not count
        it as latency either. Best effort: a driver that is not installed is reported by the
        run itself, when it connects."""
        if self.driver:
            with contextlib.suppress(ImportError):
                importlib.import_module(self.driver)

    @classmethod
    def resolve_url(cls, url: str, base_dir: Path) -> str:
        """Make relative paths in ``url`` absolute against the config folder (file engines).
        A URL the connector cannot use is a ValueError, reported as a config error."""
        return url

    @classmethod
    def create_database(cls, url: str, settings: Any) -> None:
        """Create the empty database ``url`` names, to restore into (``wellkept restore
        --create``); refused (UsageError) when it exists. ``settings``: the timeouts."""
        from wellkept.errors import UsageError

        raise UsageError(f"--create does not apply to {cls.name} targets")

    @classmethod
    def drop_created_database(cls, url: str, settings: Any) -> None:
        """Undo ``create_database`` after the restore into it failed, so that the same
        ``restore --create`` can be run again. Only ever called on what ``create_database``
        made in the same command. Nothing to undo by default (``create_database`` refuses)."""
        return None

    def identity(self) -> str:
        """What two targets share when they are the same database (the per-target lock key).

        Network engines: ``name://host:port/database``, with no user or password, so two
        targets that reach one database with different credentials still share one lock."""
        return self._where(canonical=True)

    def address(self) -> str:
        """The database as messages name it: ``name://host:port/database`` with the host as
        the config writes it, and no user or password. Engines with an identity of their own
        (a file's path) are named by it."""
        if type(self).identity is not Connector.identity:
            return self.identity()
        return self._where(canonical=False)

    def _where(self, *, canonical: bool) -> str:
        from urllib.parse import urlsplit

        u = urlsplit(self.settings.url)
        port = u.port or self.default_port
        host = (u.hostname or "localhost").lower()
        if canonical:
            if host in ("127.0.0.1", "::1", "localhost", "ip6-localhost"):
                host = "localhost"  # one server, whichever loopback spelling the URL uses
        elif ":" in host:
            host = f"[{host}]"  # an IPv6 address, bracketed as in a URL
        return f"{self.name}://{host}:{port}{u.path or '/'}"

    @abstractmethod
    def ping(self) -> Ping:
        """Connect (if needed) and answer a trivial query; raise ConnectionFailed/Unavailable."""

    def describe_counts(self, counts: dict[str, int]) -> str:
        """What ``content_counts`` (of a Dumpable) found, in words for messages."""
        rows = sum(counts.values())
        return f"{plural(len(counts), 'table')}, {rows:,} row{'' if rows == 1 else 's'}"

    def health(self) -> Ping:
        """A ping plus the cheap figures a health check judges (see ``Ping``); each engine adds
        what it can tell within one round trip or two. The default is the plain ping."""
        return self.ping()

    @classmethod
    def exporter_samples(cls, target: str, stats: dict[str, Any] | None,
                         up: bool | None) -> list[ExporterSample]:
        """Figures under the engine's usual exporter names (postgres_exporter's ``pg_*``),
        from the target's newest ``stats`` run (its metrics and details) and whether its last
        health check reached it. Engines without such names return nothing."""
        return []

    def replication_lag(self) -> float | None:
        """The worst replication lag in seconds this target can see, or None (no replicas,
        or an engine that cannot tell)."""
        return None

    def write_blocker(self) -> str | None:
        """Why this target cannot take changes now (a replica in recovery), or None."""
        return None

    def transport(self) -> Transport | None:
        """Where the target is reached over the network and whether TLS is required; None
        for targets on this machine's disk (files, SQLite, DuckDB, the host)."""
        return None

    def interrupt(self) -> None:  # noqa: B027 - optional hook; engines that can cancel override
        """Cancel the statement in progress, from another thread (used by task timeouts)."""

    def close(self) -> None:  # noqa: B027 - optional hook; connectors holding connections override
        """Release every connection. Safe to call twice."""

    def apply(self, action: Action) -> Metrics:
        """Execute an action this connector planned; return what it measured."""
        from wellkept.errors import WellkeptError

        raise WellkeptError(f"the {self.name} connector plans no actions to apply")


# --- capabilities -------------------------------------------------------------------------------
# A task lists the capabilities it needs in ``Task.requires``; the engine checks them with
# isinstance() and ends the run as `skipped` when the target's connector lacks one.


@runtime_checkable
class Vacuumable(Protocol):
    """Can reclaim space left by deleted rows."""

    def plan_vacuum(self, params: Any) -> list[Action]: ...


@runtime_checkable
class Analyzable(Protocol):
    """Can refresh the query planner's statistics."""

    def plan_analyze(self, params: Any) -> list[Action]: ...


@runtime_checkable
class Optimizable(Protocol):
    """Can rebuild fragmented tables to give their free space back (MySQL OPTIMIZE TABLE)."""

    def plan_optimize(self, params: Any) -> list[Action]: ...


@runtime_checkable
class Checkpointable(Protocol):
    """Can write its write-ahead log back into the database file (DuckDB CHECKPOINT)."""

    def plan_checkpoint(self, params: Any) -> list[Action]: ...


@runtime_checkable
class KeyCleanable(Protocol):
    """Can walk its keys by pattern with a cursor (never all at once) and delete them or give
    them a time to live, batch by batch (Redis SCAN, UNLINK, EXPIRE)."""

    def memory_used(self) -> int: ...

    def scan_keys(self, pattern: str, cursor: int, count: int,
                  key_type: str | None) -> tuple[int, list[bytes]]: ...

    def key_facts(self, keys: list[bytes], idle: bool) -> list[KeyFacts]: ...

    def delete_keys(self, keys: list[bytes]) -> int: ...

    def expire_keys(self, keys: list[bytes], seconds: int) -> int: ...


@runtime_checkable
class Reindexable(Protocol):
    """Can rebuild bloated indexes without blocking writes."""

    def plan_reindex(self, params: Any) -> list[Action]: ...


@runtime_checkable
class ViewRefreshable(Protocol):
    """Can refresh materialized views."""

    def plan_views(self, params: Any) -> list[Action]: ...


@runtime_checkable
class BloatEstimator(Protocol):
    """Can estimate wasted space in tables and indexes (and confirm the worst exactly)."""

    def estimate_bloat(self, params: Any) -> StatsReport: ...


@runtime_checkable
class IndexHealthChecker(Protocol):
    """Can find invalid, unused and duplicate indexes and other slow-burning dangers."""

    def check_index_health(self, params: Any) -> HealthReport: ...


@runtime_checkable
class Advisable(Protocol):
    """Can turn its checks into recommendations, each with the exact statement."""

    def advise(self) -> AdviceReport: ...


@runtime_checkable
class IntegrityCheckable(Protocol):
    """Can verify on-disk structures; returns the problems found (empty when healthy)."""

    def check_integrity(self, params: Any) -> IntegrityReport: ...


@runtime_checkable
class StatsProvider(Protocol):
    """Can describe sizes and the largest objects, bounded to the top N."""

    def collect_stats(self, params: Any) -> StatsReport: ...


#: receives a batch's rows (and its first and last key) inside the batch's transaction, before
#: the DELETE; it must make them durable before it returns (raising rolls the batch back)
RowSink = Callable[[list[dict[str, Any]], Any, Any], None]


@runtime_checkable
class Purgeable(Protocol):
    """Can delete old rows in short batches."""

    def purge_estimate(self, rule: PurgeRule, exact: bool = True) -> PurgeEstimate: ...

    def purge_batch(self, rule: PurgeRule, after: Any, limit: int,
                    sink: RowSink | None = None) -> PurgeBatch: ...

    def key_exists(self, rule: PurgeRule, key: Any) -> bool: ...


@runtime_checkable
class ReplicationReporter(Protocol):
    """Can say whether it replicates: its role, its replicas and their lag."""

    def replication_status(self) -> ReplicationStatus: ...


@runtime_checkable
class Dumpable(Protocol):
    """Can dump the whole database to a stream, consistently, and restore such a dump.

    The backup pipeline (compression, encryption, checksum, storage) wraps the stream; a
    connector only produces and consumes its engine's own dump format. ``restore`` loads a dump
    into the connector's own database; ``scratch`` makes an empty database like this one (on
    the same server, or a temporary file) for restore tests and drops it afterwards."""

    def dump_estimate(self) -> int: ...

    def dump(self, out: BinaryIO, options: DumpOptions) -> DumpInfo: ...

    def list_dump(self, source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]: ...

    def scratch(self) -> AbstractContextManager[str]: ...

    def restore(self, source: BinaryIO, fmt: str, options: DumpOptions) -> None: ...

    def content_counts(self) -> dict[str, int]: ...

    def is_empty(self) -> bool: ...

    def smoke(self, query: str) -> Any: ...


def smoke_answer(row: Any) -> Any:
    """What a smoke query answered, the same on every SQL engine: its first row's only value,
    the first row as a list when it has several columns, or None when it returned no row."""
    if row is None:
        return None
    values = list(row)
    return values[0] if len(values) == 1 else values


@runtime_checkable
class FileTree(Protocol):
    """Holds files the file kinds (`log_rotate`, `file_cleanup`, `consolidate`) act on.

    ``file_root`` is None for the implicit ``host``: paths are taken relative to the config
    file's folder and may be anywhere. A ``files:///`` target answers its folder: paths are
    relative to it and must stay inside it."""

    def file_root(self) -> Path | None: ...


@runtime_checkable
class QueryReader(Protocol):
    """Can run the user's own query read-only and stream its rows in bounded batches (a
    server-side cursor, an unbuffered result): never the whole result in memory."""

    def read_query(self, query: str, batch_size: int) -> AbstractContextManager[RowStream]: ...


@runtime_checkable
class RecordScanner(Protocol):
    """Can walk keys by pattern with a cursor and read them as records: each hash as its
    fields, each set's members one by one (Redis SCAN, HGETALL, SSCAN)."""

    def scan_hashes(self, pattern: str, batch_size: int
                    ) -> Iterator[list[tuple[str, dict[str, str]]]]: ...

    def scan_set_members(self, pattern: str, batch_size: int
                         ) -> Iterator[list[tuple[str, str]]]: ...


@runtime_checkable
class RoleAuditable(Protocol):
    """Can say which privileges the role wellkept logs in with holds, and which narrower
    built-in roles would do (PostgreSQL: superuser against pg_monitor and pg_maintain)."""

    def role_audit(self) -> RoleAudit: ...


# --- capability payloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class RowStream:
    """A query's column names and its rows, batch by batch (tuples in column order)."""

    columns: list[str]
    batches: Iterator[list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Transport:
    """How a network target is reached: its host, whether that is this machine (loopback, a
    Unix socket, its own name) and whether the URL makes TLS mandatory, and how."""

    host: str
    local: bool
    tls: bool
    how: str


def is_local_host(host: str | None) -> bool:
    """Loopback names and addresses, Unix socket paths and this machine's own name. No name
    is resolved: an audit must not depend on, or cause, network lookups."""
    import ipaddress
    import socket

    if not host or host.startswith("/"):
        return True
    name = host.strip("[]").lower()
    if name in ("localhost", "ip6-localhost", "ip6-loopback") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == socket.gethostname().lower()


@dataclass(frozen=True)
class RoleAudit:
    """The login role's privileges: ``excess`` names what it holds beyond need (empty when
    it is fine) and ``advice`` what to grant instead."""

    role: str
    superuser: bool
    memberships: list[str]
    excess: list[str]
    advice: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DumpOptions:
    """How to dump or restore: a private scratch folder (mode 0700, removed by the caller) and
    the parallel jobs the engine may use (PostgreSQL's directory format)."""

    workdir: Path
    jobs: int = 1
    #: an engine-specific format choice (PostgreSQL: custom | directory); "" for the default
    format: str = ""
    #: restore over existing objects (drop them first) rather than into an empty database
    replace: bool = False
    #: the destination is a throwaway database (a restore test) and its load need not be
    #: crash-safe, so the engine may skip what only durability needs (PostgreSQL loads the
    #: tables UNLOGGED, writing no WAL for them); a restore timed as an RTO leaves it off
    unlogged: bool = False


@dataclass(frozen=True)
class DumpInfo:
    """What a dump holds: its format, where it came from, and the figures a restore test
    compares (rows per table, or keys per database), taken in the dump's own snapshot where
    the engine allows it (``counts_exact``)."""

    format: str
    suffix: str
    database: str
    server_version: str
    tools: dict[str, str]
    counts: dict[str, int]
    counts_exact: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaState:
    """One replication link: a replica this server feeds, or this server's own upstream."""

    name: str
    #: the engine's word for the link's state (``streaming``, ``catchup``, ``disconnected``…)
    state: str
    #: True when the link carries changes now (streaming, or both replica threads running)
    connected: bool
    lag_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "connected": self.connected,
                "lag_seconds": self.lag_seconds, **self.details}


@dataclass(frozen=True)
class ReplicationStatus:
    """``role`` is ``primary`` (it feeds replicas, or keeps slots for them), ``replica`` (it
    replays from an upstream) or ``standalone``."""

    role: str
    replicas: list[ReplicaState] = field(default_factory=list)
    upstream: ReplicaState | None = None


@dataclass(frozen=True)
class KeyFacts:
    """What a cache cleanup needs to know of one key before acting on it."""

    key: bytes
    #: seconds to live; -1 no expiry; -2 gone since the scan
    ttl: int
    #: seconds since last access (OBJECT IDLETIME), when asked for
    idle_seconds: int | None = None


@dataclass(frozen=True)
class IntegrityReport:
    checks: list[str]
    problems: list[str]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One thing a health check found, with the figures that show it."""

    check: str
    severity: str
    object: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Advice:
    """A recommendation: stable id (``rule:object``), why, the figures, and the statement.

    ``action`` is what `apply_advice` executes; it is None for advice that needs a human
    (a column type change, terminating a session)."""

    id: str
    rule: str
    severity: str
    object: str
    reason: str
    statement: str
    evidence: dict[str, Any] = field(default_factory=dict)
    action: Action | None = None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule, "severity": self.severity,
                "object": self.object, "reason": self.reason, "statement": self.statement,
                "evidence": self.evidence, "applicable": self.action is not None}


@dataclass(frozen=True)
class AdviceReport:
    advice: list[Advice]
    #: checks that failed, so that "no recommendations" is never said on missing evidence
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HealthReport:
    findings: list[Finding]
    details: dict[str, Any]
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StatsReport:
    metrics: Metrics
    details: dict[str, Any]
    #: sections that could not be collected (each failed alone; the rest is still reported)
    errors: list[str] = field(default_factory=list)
    #: one line for the run's message, in the engine's own terms
    summary: str = ""


@dataclass(frozen=True)
class Condition:
    """One extra filter of a cleanup rule: ``column op value`` (the value is a parameter)."""

    column: str
    op: str
    value: Any = None


#: filter operators and how many values each takes (None: a list)
OPERATORS: dict[str, int | None] = {
    "=": 1, "!=": 1, "<": 1, "<=": 1, ">": 1, ">=": 1, "like": 1, "not like": 1,
    "in": None, "not in": None, "is null": 0, "is not null": 0,
}


@dataclass(frozen=True)
class PurgeRule:
    """Which rows a cleanup deletes: ``column < cutoff`` on ``table`` (NULLs never match), and
    every extra condition; with ``archive_table``, where they are copied first."""

    table: str
    column: str
    cutoff: datetime
    retention: timedelta
    conditions: tuple[Condition, ...] = ()
    unsafe_where: str | None = None
    archive_table: str | None = None


def render_conditions(rule: PurgeRule, columns: dict[str, str], quote: Callable[[str], str],
                      mark: str) -> tuple[str, list[Any]]:
    """The extra conditions as ``AND …`` SQL and its parameters.

    ``columns`` maps lower-case names to the catalog's spelling; every column must be there.
    ``quote`` quotes an identifier and ``mark`` is the driver's placeholder. Only the
    ``unsafe_where`` text, which the user asked for by that name, goes in unquoted."""
    from wellkept.errors import TaskFailed

    parts: list[str] = []
    params: list[Any] = []
    for cond in rule.conditions:
        real = columns.get(cond.column.lower())
        if real is None:
            raise TaskFailed(f"where: table {rule.table!r} has no column {cond.column!r}; "
                             f"columns: {', '.join(columns.values())}")
        arity = OPERATORS[cond.op]
        if arity == 0:
            parts.append(f"{quote(real)} {cond.op.upper()}")
        elif arity is None:
            values = list(cond.value)
            parts.append(f"{quote(real)} {cond.op.upper()} ({', '.join([mark] * len(values))})")
            params.extend(values)
        else:
            parts.append(f"{quote(real)} {cond.op.upper()} {mark}")
            params.append(cond.value)
    if rule.unsafe_where:
        # drivers whose placeholder is %s (psycopg, PyMySQL) read every % of the statement:
        # the condition's own (LIKE 'x%') is doubled so that it reaches the server as written
        raw = rule.unsafe_where.replace("%", "%%") if mark == "%s" else rule.unsafe_where
        parts.append(f"({raw})")
    return "".join(f" AND {p}" for p in parts), params


@dataclass(frozen=True)
class PurgeEstimate:
    rows: int
    oldest: Any
    newest: Any
    key: str
    statements: list[str]
    #: the cutoff as the engine compares it (the column's own format)
    cutoff: Any = None
    #: False: ``rows`` is the planner's estimate and oldest/newest are unknown (a real run
    #: needs no exact count up front: it counts what it deletes; a dry run asks for exact)
    exact: bool = True


@dataclass(frozen=True)
class PurgeBatch:
    """One committed batch: rows deleted, the last key done (the resume point), timings."""

    deleted: int
    last_key: Any
    timings: dict[str, float]
    #: rows copied to the archive table in the same transaction
    archived: int = 0


def check_sunk(keys: list[Any], deleted: int) -> None:
    """Inside the batch's transaction: every row handed to the sink must be the row deleted,
    or the batch is rolled back (raise) rather than leave the archive and the table apart."""
    if deleted != len(keys):
        from wellkept.errors import TaskFailed

        raise TaskFailed(f"archived {len(keys)} rows but the delete removed {deleted}; "
                         "the batch was rolled back")


def sunk_batch(keys: list[Any], deleted: int, marks: tuple[float, float, float, float],
               committed: float) -> PurgeBatch:
    """The record of a batch written to an archive sink: ``marks`` are the times before the
    select, after it, after the sink and after the delete; ``committed`` after the commit."""
    t0, t1, t2, t3 = marks
    return PurgeBatch(deleted, keys[-1], {"select": t1 - t0, "archive": t2 - t1,
                                          "delete": t3 - t2, "commit": committed - t3},
                      archived=deleted)
