"""``wellkept.yml``: find it, interpolate the environment, validate it into frozen settings.

Every problem is reported at once, each naming the file, the key path (``tasks.purge.retention``)
and, where they exist, the valid choices. Nothing runs when the config is invalid (exit code 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wellkept.config_coordinator import CoordinatorSettings, EmergencySettings, RecoverySettings
from wellkept.durations import Duration
from wellkept.errors import ConfigError
from wellkept.redact import redact, register_secret, url_password
from wellkept.registry import Registry
from wellkept.task import TaskParams

if TYPE_CHECKING:
    from wellkept.scheduler import ScheduleSpec

CONFIG_ENV = "WELLKEPT_CONFIG"
DEFAULT_NAME = "wellkept.yml"
DEFAULT_STATE = "sqlite:///.wellkept/state.db"
HOST_TARGET = "host"
_VAR = re.compile(
    r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<esc>\$))")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSettings(_Model):
    """A named thing to maintain; the URL scheme picks the connector."""

    url: str = Field(description="connection URL; its scheme picks the connector")
    timeout: Duration = Field(timedelta(seconds=5), description="connect and ping timeout")
    lock_timeout: Duration = Field(timedelta(seconds=5),
                                   description="how long a statement waits for a lock")
    statement_timeout: Duration = Field(timedelta(minutes=10),
                                        description="the longest any one statement may run")

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def redacted_url(self) -> str:
        return redact(self.url)


class TaskSettings(_Model):
    """A named task instance: its kind, its target and that kind's parameters."""

    name: str
    kind: str
    target: str | None = None
    #: run against each of these targets, one independent run per target (instead of target)
    targets: list[str] = []
    timeout: Duration | None = None
    lock_wait: Duration = timedelta(minutes=10)
    description: str = ""
    priority: int | None = Field(None, ge=0, le=10)
    retries: int = Field(0, ge=0, le=20)
    retry_backoff: Duration = timedelta(seconds=30)
    params: TaskParams

    def runs_on(self, default_target: str | None) -> list[str]:
        """The targets a run of this instance goes to: its target, its targets, or else its
        kind's ``default_target``."""
        if self.target:
            return [self.target]
        return list(self.targets) or ([default_target] if default_target else [])


def task_reference(entry: str, defined: Collection[str]) -> tuple[str, str | None]:
    """An entry of a task list (a schedule's ``tasks``, an emergency trigger's ``run``): the
    name of a task instance, or ``NAME@TARGET``, the instance NAME on that one of its targets
    only. A name defined as it is is that instance (a name may contain ``@``)."""
    if entry in defined or "@" not in entry:
        return entry, None
    name, _, target = entry.rpartition("@")
    return name, target


#: keys every task instance takes besides its kind's parameters
COMMON_TASK_KEYS = {
    "kind": "the task kind (see `wellkept tasks`)",
    "target": "the target to run against",
    "targets": "several targets, each run on its own (one failing does not stop the others); "
               "use instead of target",
    "timeout": "time limit for one run (default per kind)",
    "lock_wait": "how long to wait for another mutating run on the same target (default 10min)",
    "description": "free text shown in listings",
    "priority": "0-10, higher first in the coordinator's queues (default: the kind's own)",
    "retries": "attempts after a transient error (connection refused, Retry), default 0",
    "retry_backoff": "wait before the first retry, doubled each time (default 30s)",
}


class ScheduleSettings(_Model):
    """When a list of task instances runs."""

    cron: str
    tasks: list[str]
    enabled: bool = True
    description: str = ""
    timezone: str | None = None
    window: str | None = None
    grace: Duration = timedelta(hours=1)
    catch_up: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from wellkept.schedule import CronSpec

        return CronSpec.parse(value).expression

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        from wellkept.schedule import Window

        return None if value is None else Window.parse(value).text

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    def spec(self, name: str, default_tz: str) -> ScheduleSpec:
        """The parts the scheduler's slot maths needs."""
        from wellkept.schedule import CronSpec, Window
        from wellkept.scheduler import ScheduleSpec

        return ScheduleSpec(name=name, cron=CronSpec(self.cron),
                            timezone=self.timezone or default_tz, grace=self.grace,
                            catch_up=self.catch_up,
                            window=Window.parse(self.window) if self.window else None)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC "
                         "or Europe/Berlin") from None
    return value


class Threshold(_Model):
    warning: float | None = None
    critical: float | None = None


THRESHOLD_NAMES = ("connection_percent", "query_seconds", "replication_lag_seconds",
                   "cpu_percent", "memory_percent", "disk_percent")


#: the channel schemes wellkept sends itself (alerts.channels.BUILTIN); Apprise parses the rest
BUILTIN_CHANNELS = ("json", "jsons", "smtp", "smtps")


class AlertSettings(_Model):
    """Where alerts go and when they fire (see docs/alerts.md); thresholds left out keep the
    seed defaults."""

    channels: list[str] = []
    cooldown: Duration = timedelta(minutes=15)
    thresholds: dict[Literal["connection_percent", "query_seconds", "replication_lag_seconds",
                             "cpu_percent", "memory_percent", "disk_percent"], Threshold] = {}

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for url in value:
            register_secret(url_password(url))
            if "://" not in url:
                raise ValueError(f"{redact(url)!r} is not a channel URL; write scheme://…, "
                                 "e.g. json://127.0.0.1:9000/hook, smtp://mail:25/?to=ops@"
                                 "example.com, or an Apprise URL such as slack://…")
            try:  # found now, not as a crash after every run that raises an alert
                parts = urlsplit(url)
                if parts.scheme.lower() in BUILTIN_CHANNELS:  # the senders that use the port
                    parts.port  # noqa: B018 - reading it is the check
            except ValueError as exc:
                raise ValueError(f"{redact(url)!r} is not a valid URL: {exc}") from None
        return value


class HealthSettings(_Model):
    """What `wellkept health` looks at besides the targets."""

    disks: list[str] = Field(["/"], description="paths whose filesystems' usage is checked")


class MetricsSettings(_Model):
    """Prometheus exposition written after every run (node_exporter's textfile collector)."""

    textfile: str | None = Field(None, description="a .prom file, rewritten atomically")


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class ExecutorSettings(_Model):
    """``executor:``: where runs execute (docs/celery.md). ``inline``: in the process that
    starts them; ``celery``: on Celery workers, the coordinator only enqueues."""

    kind: Literal["inline", "celery"] = "inline"
    broker: str | None = Field(None, description=(
        "the Celery broker: redis://host:6379/N or amqp://user:password@host:5672/vhost"))
    queue: str = Field("maintenance", min_length=1, description="the queue runs go to")
    routes: dict[str, str] = Field({}, description=(
        "runs on these targets go to these queues instead (workers close to a database)"))
    requeue_after: Duration = Field(timedelta(minutes=1), description=(
        "a run whose message no worker took this long after it was sent, while its queue "
        "is empty, is sent again (the broker lost it)"))

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is None:
            return None
        register_secret(url_password(value))
        scheme = urlsplit(value).scheme.lower()
        if scheme not in BROKER_SCHEMES:
            raise ValueError(f"{redact(value)!r} is not a Redis or RabbitMQ URL; use "
                             "redis://host:6379/N or amqp://user:password@host:5672/vhost")
        return value

    @property
    def queues(self) -> list[str]:
        """Every queue runs may go to: the default one, then the routes' (in order)."""
        return list(dict.fromkeys([self.queue, *self.routes.values()]))

    def queue_for(self, target: str) -> str:
        return self.routes.get(target, self.queue)


class ApiSettings(_Model):
    """The HTTP API of ``wellkept serve`` (see docs/api.md)."""

    listen: str = Field("127.0.0.1:8000", description=(
        "HOST:PORT; writing it serves the API from `wellkept serve`"))
    tokens: list[str] = Field([], description=(
        "Bearer tokens accepted on mutating endpoints (empty strings are ignored)"))

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        from wellkept.listen import parse_listen

        return str(parse_listen(value))

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: list[str]) -> list[str]:
        # an unset "${WELLKEPT_API_TOKEN:-}" is no token: it must never match an empty one
        return [t for t in value if t]

    @property
    def enabled(self) -> bool:
        """Whether the config asks for the API (its ``listen`` is written)."""
        return "listen" in self.model_fields_set


class _FileModel(_Model):
    """The file's top level before task parameters are resolved by kind."""

    state: str = DEFAULT_STATE
    timezone: str = "UTC"
    plugins: list[str] = []
    targets: dict[str, TargetSettings] = {}
    tasks: dict[str, dict[str, Any]] = {}
    schedules: dict[str, ScheduleSettings] = {}
    emergency: dict[str, EmergencySettings] = {}
    coordinator: CoordinatorSettings = CoordinatorSettings()
    recovery: RecoverySettings = RecoverySettings()
    alerts: AlertSettings = AlertSettings()
    health: HealthSettings = HealthSettings()
    metrics: MetricsSettings = MetricsSettings()
    executor: ExecutorSettings = ExecutorSettings()
    api: ApiSettings = ApiSettings()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


class Settings(_Model):
    """The validated, frozen configuration."""

    source: Path | None = None
    base_dir: Path
    state: str = DEFAULT_STATE
    timezone: str = "UTC"
    plugins: list[str] = []
    targets: dict[str, TargetSettings]
    tasks: dict[str, TaskSettings] = {}
    schedules: dict[str, ScheduleSettings] = {}
    emergency: dict[str, EmergencySettings] = {}
    coordinator: CoordinatorSettings = CoordinatorSettings()
    recovery: RecoverySettings = RecoverySettings()
    alerts: AlertSettings = AlertSettings()
    health: HealthSettings = HealthSettings()
    metrics: MetricsSettings = MetricsSettings()
    executor: ExecutorSettings = ExecutorSettings()
    api: ApiSettings = ApiSettings()

    def schedule_spec(self, name: str) -> ScheduleSpec:
        return self.schedules[name].spec(name, self.timezone)


# --- finding and reading ------------------------------------------------------------------------


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config PATH``, else ``$WELLKEPT_CONFIG``, else ``./wellkept.yml``."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path.cwd() / DEFAULT_NAME


def load_config(path: str | os.PathLike[str] | None = None, *,
                env: Mapping[str, str] | None = None,
                registry: Registry | None = None) -> Settings:
    """Read, interpolate and validate a config file. Raises ConfigError listing every problem."""
    file = find_config(path)
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); save the file as UTF-8", source) from None
    except FileNotFoundError:
        raise ConfigError(f"no config file here; create one with `wellkept init --path {file}` "
                          f"or point to one with --config or ${CONFIG_ENV}", source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", source) from None
    return parse_config(text, source=source, base_dir=file.resolve().parent,
                        env=os.environ if env is None else env, registry=registry)


def parse_config(text: str, *, source: str, base_dir: Path, env: Mapping[str, str],
                 registry: Registry | None = None) -> Settings:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{where}not valid YAML ({getattr(exc, 'problem', exc)})",
                          source) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of keys (state, targets, tasks, …)",
                          source)
    problems: list[str] = []
    raw = _interpolate(raw, env, (), problems)
    # go on validating even so: one `wellkept check` should show every problem at once
    return _validate(raw, source, base_dir, registry or Registry.default(), problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping: YAML parsers keep
    the last one, so a second task of the same name would silently replace the first. Keys
    brought in by a merge (``<<: *base``) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
                seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}, first written on line {first + 1}; "
                    "the second would silently replace the first", key_node.start_mark)
        return super().construct_mapping(node, deep)


def settings_from_mapping(raw: dict[str, Any], *, source: str, base_dir: Path,
                          registry: Registry | None = None) -> Settings:
    """Validate an already-parsed config (the keys of wellkept.yml) into Settings, exactly as a
    file is validated, but without ``${VAR}`` interpolation: a caller with Python at hand (the
    Django integration) reads the environment itself, and a ``$`` in a password it passes must
    stay a ``$``."""
    return _validate(raw, source, base_dir, registry or Registry.default(), [])


# --- interpolation ------------------------------------------------------------------------------


def _interpolate(node: Any, env: Mapping[str, str], path: tuple[str | int, ...],
                 problems: list[str]) -> Any:
    if isinstance(node, dict):
        for key in node:
            if not isinstance(key, str):
                hint = {True: "yes/on/true", False: "no/off/false"}.get(key, repr(key)) \
                    if isinstance(key, bool) else repr(key)
                problems.append(f"{_dotted((*path, str(key)))}: YAML read this name as "
                                f"{type(key).__name__} {key!r} ({hint}); put it in quotes")
        return {str(k): _interpolate(v, env, (*path, str(k)), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, (*path, i), problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def replace(m: re.Match[str]) -> str:
        if m.group("esc"):
            return "$"
        name, default = m.group("name"), m.group("default")
        value = env.get(name)
        if default is not None and not value:  # `:-` means unset *or empty*, as in the shell
            return default
        if value is not None:
            return value
        problems.append(f"{_dotted(path)}: environment variable {name} is not set and has no "
                        f"default (write ${{{name}:-default}} to give one)")
        return ""

    return _VAR.sub(replace, node)


# --- validation ---------------------------------------------------------------------------------


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself is invalid"
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...],
                       model: type[BaseModel], extra_keys: dict[str, str] | None = None
                       ) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        if err["type"] == "extra_forbidden":
            choices = _fields_at(model, tuple(err["loc"][:-1]))
            if extra_keys and len(err["loc"]) == 1:
                choices = sorted(set(choices) | set(extra_keys))
            problems.append(f"{_dotted(loc)}: unknown key; valid keys: {', '.join(choices)}")
        elif err["type"] == "literal_error":
            problems.append(f"{_dotted(loc)}: {err['input']!r} is not allowed; "
                            f"choose one of: {err['ctx']['expected']}")
        elif err["type"] == "missing":
            problems.append(f"{_dotted(loc)}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_dotted(loc)}: {msg}")
    return problems


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the model found by walking ``loc`` through fields and dict values."""
    current: Any = _model_of(model)
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list and isinstance(part, int):  # rules[0]
            current = get_args(current)[0]
        else:
            current = None
        current = _model_of(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    """``Model`` for ``Model | None``; any other annotation as it is."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _validate(raw: dict[str, Any], source: str, base_dir: Path, registry: Registry,
              problems: list[str]) -> Settings:
    try:
        top: _FileModel | None = _FileModel.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, (), _FileModel))
        top = None
    # Go on checking what can be checked, so that one run of `wellkept check` shows every
    # problem, not just the first layer of them.
    raw_targets = raw.get("targets") if isinstance(raw.get("targets"), dict) else {}
    raw_tasks = raw.get("tasks") if isinstance(raw.get("tasks"), dict) else {}
    plugins = raw.get("plugins")
    _load_plugins(plugins if isinstance(plugins, list) else [], base_dir, registry, problems)
    targets = (_resolve_targets(top.targets, base_dir, registry, problems) if top else {})
    target_names = set(targets) | set(raw_targets or {}) | {HOST_TARGET}
    tasks = _resolve_tasks(raw_tasks or {}, target_names, registry, problems)
    _check_task_names(tasks, registry, problems)
    _check_empty_names(raw, problems)
    _check_task_lists(raw, "schedules", "tasks", set(raw_tasks or {}), tasks, registry,
                      problems)
    _check_task_lists(raw, "emergency", "run", set(raw_tasks or {}), tasks, registry, problems)
    _check_conditions(raw, target_names, problems)
    state = _resolve_state(top.state if top else DEFAULT_STATE, base_dir, problems)
    if top is not None:
        _check_executor(top.executor, state, target_names, problems)
    if problems or top is None:
        raise ConfigError(problems, source)
    health = top.health.model_copy(update={"disks": [
        str(base_dir / d) if not Path(d).expanduser().is_absolute() else str(Path(d).expanduser())
        for d in top.health.disks]})
    metrics = top.metrics
    if metrics.textfile and not Path(metrics.textfile).expanduser().is_absolute():
        metrics = metrics.model_copy(update={"textfile": str(base_dir / metrics.textfile)})
    return Settings(source=Path(source), base_dir=base_dir, state=state, timezone=top.timezone,
                    plugins=top.plugins, targets=targets, tasks=tasks, schedules=top.schedules,
                    emergency=top.emergency, coordinator=top.coordinator,
                    recovery=top.recovery, alerts=top.alerts, health=health, metrics=metrics,
                    executor=top.executor, api=top.api)


def _check_task_lists(raw: dict[str, Any], section: str, key: str, defined: set[str],
                      tasks: dict[str, TaskSettings], registry: Registry,
                      problems: list[str]) -> None:
    """Every entry of ``SECTION.NAME.KEY`` (a list) must name a task instance that can run
    unattended: one with a target (or targets), unless its kind has a default target; an entry
    ``NAME@TARGET`` must name one of the instance's targets."""
    entries = raw.get(section) if isinstance(raw.get(section), dict) else {}
    for name, body in (entries or {}).items():
        listed = body.get(key) if isinstance(body, dict) else None
        for i, entry in enumerate(listed if isinstance(listed, list) else []):
            where = f"{section}.{name}.{key}[{i}]"
            task_name, on = task_reference(str(entry), defined)
            inst = tasks.get(task_name)
            runs_on = inst.runs_on(registry.task_class(inst.kind).default_target) if inst \
                else []
            if task_name not in defined:
                problems.append(f"{where}: unknown task {entry!r}; defined tasks: "
                                + (", ".join(sorted(defined)) or "(none)"))
            elif inst is not None and not runs_on:
                problems.append(f"{where}: task {task_name!r} has no target, so it cannot run "
                                "unattended; give it one (tasks."
                                f"{task_name}.target)")
            elif inst is not None and on is not None and on not in runs_on:
                problems.append(f"{where}: task {task_name!r} does not run on {on!r} (write "
                                f"{task_name}@TARGET with one of its targets: "
                                f"{', '.join(runs_on)})")


def _check_empty_names(raw: dict[str, Any], problems: list[str]) -> None:
    """An empty name ('' or blanks) cannot be given on a command line, and reads as 'none'
    where a target is optional."""
    for section in ("targets", "tasks", "schedules", "emergency"):
        entries = raw.get(section)
        if isinstance(entries, dict) and any(not str(name).strip() for name in entries):
            problems.append(f"{section}: a name may not be empty")


def _check_task_names(tasks: dict[str, TaskSettings], registry: Registry,
                      problems: list[str]) -> None:
    """A name ``NAME@TARGET`` of an instance must not also read as the instance NAME on one of
    its targets: a task list naming it would be ambiguous."""
    for name in tasks:
        base, _, on = name.rpartition("@")
        inst = tasks.get(base)
        if inst is not None and on in inst.runs_on(registry.task_class(inst.kind).default_target):
            problems.append(f"tasks.{name}: the name also reads as task {base!r} on its target "
                            f"{on!r} (NAME@TARGET in a schedule); rename one of the two")


def _check_conditions(raw: dict[str, Any], targets: set[str], problems: list[str]) -> None:
    from wellkept.conditions import Condition

    entries = raw.get("emergency") if isinstance(raw.get("emergency"), dict) else {}
    for name, body in (entries or {}).items():
        when = body.get("when") if isinstance(body, dict) else None
        if isinstance(when, str):
            try:
                Condition.parse(when, targets)
            except ValueError as exc:
                problems.append(f"emergency.{name}.when: {exc}")


def _load_plugins(modules: list[Any], base_dir: Path, registry: Registry,
                  problems: list[str]) -> None:
    for i, module in enumerate(modules):
        if not isinstance(module, str):
            continue  # the model check reports the type
        try:
            registry.load_plugin(module, base_dir)
        except ConfigError as exc:
            problems.extend(f"plugins[{i}]: {p}" for p in exc.problems)


def _resolve_targets(raw: dict[str, TargetSettings], base_dir: Path, registry: Registry,
                     problems: list[str]) -> dict[str, TargetSettings]:
    targets: dict[str, TargetSettings] = {}
    for name, target in raw.items():
        register_secret(url_password(target.url))
        scheme = target.scheme
        if not scheme:
            problems.append(f"targets.{name}.url: {target.redacted_url!r} has no scheme; "
                            f"known schemes: {', '.join(registry.schemes())}")
            continue
        if scheme not in registry.connectors:
            problems.append(f"targets.{name}.url: no connector handles the scheme {scheme!r}; "
                            f"known schemes: {', '.join(registry.schemes())}")
            continue
        if (problem := _authority_problem(target.url)) is not None:
            problems.append(f"targets.{name}.url: {problem}")
            continue
        try:
            url = registry.connector_class(scheme).resolve_url(target.url, base_dir)
        except ValueError as exc:
            problems.append(f"targets.{name}.url: {redact(str(exc))}")
            continue
        targets[name] = target.model_copy(update={"url": url})
    targets.setdefault(HOST_TARGET, TargetSettings(url="host://localhost"))
    return targets


def _authority_problem(url: str) -> str | None:
    """Why the host and port of a network URL cannot be read, or None. A '#', '/' or '?' left
    unencoded in the password ends the URL's host part there, so the port read back would be
    the start of the password: it is registered as a secret, and never named."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
        if "@" in parts.fragment:  # 'app:1234#x@db': the port read back is '1234'
            raise ValueError(parts.fragment)
    except ValueError:
        rest = url.split("://", 1)[-1]
        userinfo = rest.rpartition("@")[0]
        register_secret(userinfo.partition(":")[2])
        return ("cannot read the host and port of this URL; a user name or password holding "
                "'#', '/' or '?' must be percent-encoded (%23, %2F, %3F), and the port must "
                "be a number from 1 to 65535")
    return None


def _resolve_tasks(raw: dict[str, Any], targets: set[str], registry: Registry,
                   problems: list[str]) -> dict[str, TaskSettings]:
    tasks: dict[str, TaskSettings] = {}
    for name, body in raw.items():
        where = f"tasks.{name}"
        if not isinstance(body, dict):
            problems.append(f"{where}: must be a mapping with at least `kind` and `target`")
            continue
        kind = body.get("kind")
        if not isinstance(kind, str):
            problems.append(f"{where}.kind: required key is missing; choose one of: "
                            + ", ".join(registry.task_names()))
            continue
        if kind not in registry.tasks:
            problems.append(f"{where}.kind: unknown task kind {kind!r}; choose one of: "
                            + ", ".join(registry.task_names()))
            continue
        # the parameters are checked even when a target is wrong: a mistyped `targets:`
        # key must not hide every task's own mistakes until it is fixed
        targets_ok = _task_targets_ok(where, body, targets, problems)
        task_cls = registry.task_class(kind)
        common = {k: body[k] for k in COMMON_TASK_KEYS if k in body}
        params_raw = {k: v for k, v in body.items() if k not in COMMON_TASK_KEYS}
        try:
            params = task_cls.Params.model_validate(params_raw)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, ("tasks", name), task_cls.Params,
                                               COMMON_TASK_KEYS))
            continue
        if not targets_ok:
            continue
        for key, named in params.named_targets():
            if named not in targets:
                problems.append(f"{where}.{key}: unknown target {named!r}; defined targets: "
                                + ", ".join(sorted(targets)))
        for key, problem in params.target_problems(list(body.get("targets") or [])):
            problems.append(f"{where}.{key}: {problem}")
        try:
            tasks[name] = TaskSettings.model_validate({**common, "name": name, "params": params})
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, ("tasks", name), TaskSettings))
    return tasks


def _task_targets_ok(where: str, body: dict[str, Any], targets: set[str],
                     problems: list[str]) -> bool:
    """``target`` or ``targets`` (not both), naming defined targets only."""
    target, many = body.get("target"), body.get("targets")
    if target is not None and many is not None:
        problems.append(f"{where}: give either target or targets, not both")
        return False
    named = [(f"{where}.target", target)] if target is not None else []
    if many is not None:
        if not isinstance(many, list) or not many:
            problems.append(f"{where}.targets: must be a non-empty list of target names")
            return False
        named += [(f"{where}.targets[{i}]", t) for i, t in enumerate(many)]
    ok = True
    for key, name in named:
        if not isinstance(name, str) or name not in targets:
            problems.append(f"{key}: unknown target {name!r}; defined targets: "
                            + ", ".join(sorted(targets)))
            ok = False
    return ok


def _check_executor(executor: ExecutorSettings, state: str, targets: set[str],
                    problems: list[str]) -> None:
    """The celery executor needs a broker and a state store that every worker shares."""
    for target in executor.routes:
        if target not in targets:
            problems.append(f"executor.routes.{target}: unknown target {target!r}; defined "
                            f"targets: {', '.join(sorted(targets))}")
    if executor.kind != "celery":
        return
    if not executor.broker:
        problems.append("executor.broker: required with kind celery; e.g. "
                        "redis://127.0.0.1:6379/1 or amqp://guest:guest@127.0.0.1:5672//")
    if urlsplit(state).scheme.lower().startswith("sqlite"):
        problems.append("executor.kind: celery needs a state store that every worker shares, "
                        f"but state is {redact(state)!r} (an SQLite file of this machine); "
                        "use state: postgresql://…")


def _resolve_state(state: str, base_dir: Path, problems: list[str]) -> str:
    scheme = urlsplit(state).scheme.lower()
    if scheme.startswith("sqlite"):
        path = state.split(":///", 1)[1] if ":///" in state else ""
        if not path:
            problems.append("state: an SQLite state store needs a file path, "
                            "e.g. sqlite:///.wellkept/state.db")
            return state
        if not Path(path).is_absolute():
            return f"sqlite:///{(base_dir / path).resolve()}"
        return state
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        register_secret(url_password(state))
        if (problem := _authority_problem(state)) is not None:
            problems.append(f"state: {problem}")
        return state
    problems.append(f"state: unsupported state store {redact(state)!r}; use sqlite:///PATH or "
                    "postgresql://…")
    return state
