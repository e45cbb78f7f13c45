"""The registry: built-in kinds and connectors, entry-point plugins, lazy optional drivers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import free_port, run_cli
from wellkept.errors import ConfigError
from wellkept.registry import BUILTIN_CONNECTORS, BUILTIN_TASKS, Registry

KINDS = ["advise", "analyze", "apply_advice", "backup", "backup_freshness", "bloat",
         "cache_cleanup", "checkpoint", "cleanup", "consolidate", "dr_drill", "export",
         "file_cleanup", "health", "index_health", "integrity", "log_rotate", "optimize",
         "reconcile", "reindex", "report", "security_audit", "sessions", "stats", "vacuum",
         "verify_backup", "views"]
DRIVERS = ("psycopg", "pymysql", "duckdb", "redis", "celery", "kombu")


def run_python(code: str, *, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "WELLKEPT_CONFIG"}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)


def cli_with_blocked(args: list[str], modules: tuple[str, ...] = DRIVERS, *,
                     cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `wellkept ARGS` in a fresh interpreter where importing ``modules`` fails."""
    return run_python(f"""
        import sys
        for name in {modules!r}:
            sys.modules[name] = None
        sys.argv = ["wellkept", *{args!r}]
        from wellkept.cli import main
        main()
    """, cwd=cwd)


# --- built-ins ----------------------------------------------------------------------------------


def test_builtin_kinds_and_schemes() -> None:
    reg = Registry()
    assert reg.task_names() == KINDS
    assert reg.schemes() == sorted(BUILTIN_CONNECTORS)
    for kind in KINDS:
        cls = reg.task_class(kind)
        assert cls.kind == kind
        assert cls.summary()
    assert reg.connector_class("postgres") is reg.connector_class("postgresql")
    assert reg.connector_class("rediss").name == "redis"
    assert reg.connector_class("mariadb").name == "mysql"


def test_classes_are_cached() -> None:
    reg = Registry()
    assert reg.task_class("vacuum") is reg.task_class("vacuum")


def test_engines_for() -> None:
    reg = Registry()
    assert reg.engines_for("stats") == ["duckdb", "files", "host", "mysql", "postgresql",
                                        "redis", "sqlite"]
    assert reg.engines_for("analyze") == ["duckdb", "mysql", "postgresql", "sqlite"]
    assert reg.engines_for("vacuum") == ["postgresql", "sqlite"]
    for kind in ("cleanup", "sessions"):
        assert reg.engines_for(kind) == ["mysql", "postgresql", "sqlite"], kind
    assert reg.engines_for("integrity") == ["mysql", "sqlite"]
    assert reg.engines_for("optimize") == ["mysql"]
    assert reg.engines_for("checkpoint") == ["duckdb"]
    assert reg.engines_for("cache_cleanup") == ["redis"]
    assert reg.engines_for("health") == sorted(  # needs nothing of its target
        {reg.connector_class(s).name for s in reg.schemes()})
    for kind in ("backup", "verify_backup"):
        assert reg.engines_for(kind) == ["duckdb", "files", "mysql", "postgresql", "redis",
                                         "sqlite"], kind
    for kind in ("reindex", "views", "bloat", "index_health", "advise"):
        assert reg.engines_for(kind) == ["postgresql"], kind
    for kind in ("log_rotate", "file_cleanup", "consolidate"):  # the host or a folder
        assert reg.engines_for(kind) == ["files", "host"], kind
    assert reg.engines_for("export") == ["duckdb", "mysql", "postgresql", "sqlite"]
    for kind in ("reconcile", "security_audit"):  # run on the host, read the targets named
        assert reg.engines_for(kind) == reg.engines_for("health"), kind


def test_unknown_kind_and_scheme_name_the_choices() -> None:
    reg = Registry()
    with pytest.raises(ConfigError, match=r"unknown task kind 'vacum'; choose one of: "
                                          + ", ".join(KINDS)):
        reg.task_class("vacum")
    with pytest.raises(ConfigError, match=r"no connector handles URL scheme 'mongodb'; "
                                          r"known schemes: duckdb, files, host, mariadb"):
        reg.connector_class("mongodb")
    with pytest.raises(ConfigError, match="unknown task kind"):
        reg.engines_for("nope")


def test_an_entry_that_is_not_a_class_is_refused() -> None:
    reg = Registry(tasks={**BUILTIN_TASKS, "odd": "wellkept.registry:BUILTIN_TASKS"})
    with pytest.raises(ConfigError, match=r"task 'odd' \(wellkept.registry:BUILTIN_TASKS\) is "
                                          r"not a class"):
        reg.task_class("odd")


def test_cli_lists_the_builtin_kinds() -> None:
    proc = run_cli("tasks", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["kind"]: r for r in json.loads(proc.stdout)}
    assert sorted(rows) == KINDS
    assert rows["stats"]["engines"] == ["duckdb", "files", "host", "mysql", "postgresql",
                                        "redis", "sqlite"]
    assert {k for k, r in rows.items() if r["mutating"]} == {
        "analyze", "apply_advice", "backup", "cache_cleanup", "checkpoint", "cleanup",
        "consolidate", "export", "file_cleanup", "log_rotate", "optimize", "reindex",
        "sessions", "vacuum", "views"}
    text = run_cli("tasks")
    assert text.returncode == 0
    for kind in KINDS:
        assert kind in text.stdout


def test_cli_tasks_unknown_kind_is_a_usage_error() -> None:
    proc = run_cli("tasks", "vacum")
    assert proc.returncode == 2
    assert "error: unknown task kind 'vacum'; choose one of: advise, analyze" in proc.stderr


# --- drivers are optional -----------------------------------------------------------------------


def test_registry_and_cli_import_no_driver() -> None:
    proc = run_python("""
        import sys
        from wellkept.registry import Registry
        import wellkept.cli
        reg = Registry.default()
        reg.task_names(); reg.engines_for("stats")
        print([m for m in ("psycopg", "pymysql", "duckdb", "redis", "celery", "kombu")
               if m in sys.modules])
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_and_tasks_work_with_every_driver_blocked() -> None:
    helped = cli_with_blocked(["--help"])
    assert helped.returncode == 0, helped.stderr
    assert "Usage: wellkept" in helped.stdout and "check" in helped.stdout
    listed = cli_with_blocked(["tasks", "--output", "json"])
    assert listed.returncode == 0, listed.stderr
    assert [r["kind"] for r in json.loads(listed.stdout)] == KINDS
    shown = cli_with_blocked(["tasks", "cleanup"])
    assert shown.returncode == 0, shown.stderr
    assert "retention" in shown.stdout and "batch_size" in shown.stdout


@pytest.mark.parametrize(("scheme", "module", "extra", "url"), [
    ("postgresql", "psycopg", "postgres", "postgresql://app:pw@127.0.0.1:{port}/app"),
    ("mysql", "pymysql", "mysql", "mysql://root@127.0.0.1:{port}/shop"),
    ("redis", "redis", "redis", "redis://127.0.0.1:{port}/0"),
    ("duckdb", "duckdb", "duckdb", "duckdb:///tmp/nowhere.duckdb"),
])
def test_missing_driver_names_the_extra(scheme: str, module: str, extra: str, url: str) -> None:
    proc = run_python(f"""
        import sys
        sys.modules[{module!r}] = None
        from wellkept.config import TargetSettings
        from wellkept.errors import MissingDependency
        from wellkept.registry import Registry
        cls = Registry.default().connector_class({scheme!r})
        try:
            cls("t", TargetSettings(url={url.format(port=free_port())!r})).ping()
        except MissingDependency as exc:
            print(exc)
        else:
            print("no error")
    """)
    assert proc.returncode == 0, proc.stderr
    assert f"pip install 'wellkept[{extra}]'" in proc.stdout
    assert f"'{module}'" in proc.stdout


def test_check_reports_the_missing_driver(tmp_path: Path) -> None:
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'targets:\n  app: {{url: "postgresql://app:pw-x1@127.0.0.1:{free_port()}'
                   '/app"}\n', encoding="utf-8")
    proc = cli_with_blocked(["-c", str(cfg), "check", "--output", "json"], ("psycopg",))
    assert proc.returncode == 1, proc.stderr
    app = {t["target"]: t for t in json.loads(proc.stdout)["targets"]}["app"]
    assert app["status"] == "down"
    assert "pip install 'wellkept[postgres]'" in app["error"]
    text = cli_with_blocked(["-c", str(cfg), "check"], ("psycopg",))
    assert text.returncode == 1
    # the table may wrap the message inside its cell
    assert "pipinstall'wellkept[postgres]'" in re.sub(r"[\s│]", "", text.stdout)
    assert "pw-x1" not in text.stdout + text.stderr


# --- `wellkept tasks KIND` ----------------------------------------------------------------------


def test_tasks_cleanup_shows_parameters_with_types_and_defaults() -> None:
    proc = run_cli("tasks", "cleanup", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "cleanup" and doc["mutating"] is True
    assert doc["default_timeout"] == "2h"
    params = {p["name"]: p for p in doc["parameters"]}
    assert params["table"]["required"] is True and params["table"]["type"] == "str"
    assert params["retention"]["required"] is True
    assert params["batch_size"] == {"name": "batch_size", "type": "int", "required": False,
                                    "default": 5000,
                                    "description": ("rows in the first batch (transaction); "
                                    "later batches adapt to target_batch_seconds")}
    assert params["sleep"]["default"] == "0s"
    assert params["mode"]["default"] == "delete"
    text = run_cli("tasks", "cleanup")
    assert text.returncode == 0
    for piece in ("parameters", "retention", "(required)", "5000", "'delete'", "'0s'",
                  "every task instance also takes: kind, target, targets, timeout, lock_wait"):
        assert piece in text.stdout, piece


def test_tasks_cleanup_parameter_types_are_informative() -> None:
    """A type column of bare `Literal` / `Optional` tells the user nothing they can write."""
    params = {p["name"]: p for p in json.loads(
        run_cli("tasks", "cleanup", "--output", "json").stdout)["parameters"]}
    assert "delete" in params["mode"]["type"], params["mode"]
    assert "timedelta" in params["max_runtime"]["type"] or \
        "duration" in params["max_runtime"]["type"], params["max_runtime"]


# --- third-party kinds and connectors through entry points --------------------------------------

PLUGIN = '''
from pydantic import Field

from wellkept.connector import Connector, Ping
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams


class EchoParams(TaskParams):
    word: str = Field("hello", description="what to say")


class Echo(Task):
    """Ping the target and say a word (a third-party kind)."""

    kind = "echo"
    Params = EchoParams

    def run(self, ctx):
        ping = ctx.connector.ping()
        return TaskResult(message=f"{self.params.word} from {ping.version}",
                          metrics={"words": 1})


class Leaky(Task):
    """Crash with the target URL in the message (redaction must catch it)."""

    kind = "leaky"

    def run(self, ctx):
        raise RuntimeError(f"boom talking to {ctx.connector.settings.url}")


class MemConnector(Connector):
    """A pretend engine."""

    name = "mem"
    summary = "a pretend engine"

    def ping(self):
        return Ping(latency_ms=0.5, version="mem 1.0")
'''

ENTRY_POINTS = """\
[wellkept.tasks]
echo = wk_plugin_demo:Echo
leaky = wk_plugin_demo:Leaky
vacuum = wk_plugin_demo:Echo

[wellkept.connectors]
mem = wk_plugin_demo:MemConnector
sqlite = wk_plugin_demo:MemConnector
"""


@pytest.fixture
def plugin_path(tmp_path: Path) -> dict[str, str]:
    """A folder holding an installed-looking plugin distribution; returns env for subprocesses."""
    site = tmp_path / "site"
    dist = site / "wk_plugin_demo-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "wk_plugin_demo.py").write_text(PLUGIN, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wk-plugin-demo\nVersion: 0.1\n",
                                   encoding="utf-8")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return {"PYTHONPATH": str(site)}


def test_entry_point_kind_and_connector_are_registered(plugin_path: dict[str, str]) -> None:
    proc = run_python("""
        import json
        from wellkept.registry import Registry
        reg = Registry.default()
        print(json.dumps({
            "kinds": reg.task_names(), "schemes": reg.schemes(),
            "echo": reg.task_class("echo").__name__,
            "mem": reg.connector_class("mem").name,
            "vacuum": reg.task_class("vacuum").__module__,
            "sqlite": reg.connector_class("sqlite").__module__,
            "echo_engines": reg.engines_for("echo"),
        }))
    """, env=plugin_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["kinds"] == sorted([*KINDS, "echo", "leaky"])
    assert "mem" in got["schemes"]
    assert (got["echo"], got["mem"]) == ("Echo", "mem")
    # a plugin cannot silently replace a built-in
    assert got["vacuum"] == "wellkept.tasks.vacuum"
    assert got["sqlite"] == "wellkept.connectors.sqlite"
    assert {"mem", "sqlite", "postgresql", "host"} <= set(got["echo_engines"])


def test_plugin_kind_shows_in_cli_and_runs_against_plugin_connector(
        plugin_path: dict[str, str], tmp_path: Path) -> None:
    listed = run_cli("tasks", "--output", "json", env=plugin_path)
    assert listed.returncode == 0, listed.stderr
    assert "echo" in [r["kind"] for r in json.loads(listed.stdout)]
    shown = run_cli("tasks", "echo", "--output", "json", env=plugin_path)
    assert json.loads(shown.stdout)["parameters"][0]["name"] == "word"

    cfg = tmp_path / "wellkept.yml"
    cfg.write_text('targets:\n  box: {url: "mem://anything"}\n'
                   "tasks:\n  say: {kind: echo, target: box, word: hi}\n", encoding="utf-8")
    check = run_cli("-c", str(cfg), "check", "--output", "json", env=plugin_path)
    assert check.returncode == 0, check.stderr
    box = {t["target"]: t for t in json.loads(check.stdout)["targets"]}["box"]
    assert (box["status"], box["version"]) == ("up", "mem 1.0")
    ran = run_cli("-c", str(cfg), "run", "say", "--output", "json", env=plugin_path)
    assert ran.returncode == 0, ran.stderr
    (run,) = json.loads(ran.stdout)["results"]
    assert (run["kind"], run["status"], run["message"]) == ("echo", "completed", "hi from mem 1.0")
    assert run["metrics"] == {"words": 1}
    assert (tmp_path / ".wellkept" / "state.db").exists()


def test_plugin_config_without_the_plugin_installed_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text('targets:\n  box: {url: "mem://x"}\ntasks:\n  say: {kind: echo}\n',
                   encoding="utf-8")
    proc = run_cli("-c", str(cfg), "check")
    assert proc.returncode == 2
    assert "targets.box.url: no connector handles the scheme 'mem'" in proc.stderr
    assert "tasks.say.kind: unknown task kind 'echo'" in proc.stderr


def test_failed_run_against_a_password_target_never_shows_the_password(
        plugin_path: dict[str, str], tmp_path: Path) -> None:
    secret = "s3cret-pw"
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'targets:\n  app: {{url: "postgresql://app:{secret}@127.0.0.1:{free_port()}'
                   '/app", timeout: 2s}\n'
                   "tasks:\n  ping-app: {kind: echo, target: app}\n"
                   "  leak-app: {kind: leaky, target: app}\n", encoding="utf-8")
    proc = run_cli("-c", str(cfg), "run", "ping-app", "leak-app", "--output", "json",
                   env=plugin_path)
    assert proc.returncode == 1, proc.stderr
    assert secret not in proc.stdout
    runs = {r["task"]: r for r in json.loads(proc.stdout)["results"]}
    assert runs["ping-app"]["status"] == "failed"
    assert "cannot connect" in runs["ping-app"]["message"]
    assert runs["leak-app"]["status"] == "failed"
    assert "postgresql://app:***@127.0.0.1" in runs["leak-app"]["message"]
    assert all(secret not in e for e in runs["leak-app"]["errors"])
    history = run_cli("-c", str(cfg), "history", "--output", "json", env=plugin_path)
    assert history.returncode == 0, history.stderr
    assert secret not in history.stdout and len(json.loads(history.stdout)) == 2


def test_crash_log_on_stderr_never_shows_the_password(
        plugin_path: dict[str, str], tmp_path: Path) -> None:
    """The ERROR log of a crashed run carries a traceback; it must be redacted like the rest."""
    secret = "s3cret-pw"
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'targets:\n  app: {{url: "postgresql://app:{secret}@127.0.0.1:1/app"}}\n'
                   "tasks:\n  leak-app: {kind: leaky, target: app}\n", encoding="utf-8")
    proc = run_cli("-c", str(cfg), "run", "leak-app", env=plugin_path)
    assert proc.returncode == 1
    assert "leak-app on app crashed" in proc.stderr
    assert secret not in proc.stderr


@pytest.mark.parametrize("kind", ["stats", "bloat", "index_health", "vacuum", "advise"])
def test_every_postgres_kind_names_the_missing_driver(tmp_path: Path, kind: str) -> None:
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'targets:\n  app: {{url: "postgresql://app@127.0.0.1:{free_port()}/app"}}\n',
                   encoding="utf-8")
    proc = cli_with_blocked(["-c", str(cfg), "run", kind, "-t", "app", "-o", "json"],
                            ("psycopg",))
    assert proc.returncode == 1, proc.stderr
    (record,) = json.loads(proc.stdout)["results"]
    assert record["status"] == "failed"
    assert "pip install 'wellkept[postgres]'" in record["message"], record["message"]
    assert "Traceback" not in proc.stderr and not any("Traceback" in e for e in record["errors"])


def test_every_default_parameter_fits_its_own_type() -> None:
    """A default that does not match its field's type makes pydantic print a serializer
    warning on every run of the kind (reconcile's default_tolerance was 0 for float | str)."""
    import typing
    import warnings

    from pydantic import BaseModel, TypeAdapter

    registry = Registry.default()
    seen: set[type] = set()
    bad: list[str] = []

    def walk(model: type[BaseModel], where: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            for arg in (field.annotation, *typing.get_args(field.annotation)):
                for inner in (arg, *typing.get_args(arg)):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        walk(inner, f"{where}.{name}")
            if field.is_required():
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                TypeAdapter(field.annotation).dump_python(
                    field.get_default(call_default_factory=True))
            if caught:
                bad.append(f"{where}.{name}")

    for kind in registry.task_names():
        walk(registry.task_class(kind).Params, kind)
    assert bad == []
