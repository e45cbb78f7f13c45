"""wellkept.yml: every kind of config error (library and CLI), interpolation, paths, secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.helpers import free_port, run_cli
from wellkept.config import find_config, load_config
from wellkept.errors import ConfigError
from wellkept.registry import Registry

WriteConfig = Callable[..., Path]
KINDS = ", ".join(Registry().task_names())
SCHEMES = "duckdb, files, host, mariadb, mysql, postgres, postgresql, redis, rediss, sqlite"
LOCAL = 'targets:\n  local: {url: "sqlite:///app.sqlite3"}\n'


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    """Load ``path``, expect a ConfigError, check each line names the file; return the text."""
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    text = str(info.value)
    assert info.value.source == str(path)
    for line in text.splitlines():
        assert line.startswith(f"{path}: "), line
    return text


def test_unknown_top_level_key(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + "colour: blue\n")
    assert config_error(path) == (
        f"{path}: colour: unknown key; valid keys: "
        "alerts, api, coordinator, emergency, executor, health, metrics, plugins, recovery, "
        "schedules, state, targets, tasks, timezone")


def test_unknown_key_inside_a_target(write_config: WriteConfig) -> None:
    path = write_config('targets:\n  local: {url: "sqlite:///a.db", pasword: x}\n')
    assert config_error(path) == (f"{path}: targets.local.pasword: unknown key; valid keys: "
                                  "lock_timeout, statement_timeout, timeout, url")


def test_unknown_key_inside_a_task_lists_the_kind_params_and_common_keys(
        write_config: WriteConfig) -> None:
    path = write_config(LOCAL + """tasks:
      purge-sessions: {kind: cleanup, target: local, table: s, date_column: d,
                       retention: 30d, retention_dayz: 30}
    """)
    text = config_error(path)
    assert "tasks.purge-sessions.retention_dayz: unknown key; valid keys: " in text
    keys = text.split("valid keys: ", 1)[1].split(", ")
    assert keys == sorted(keys)
    assert {"table", "date_column", "soft_delete_column", "retention", "mode", "batch_size",
            "sleep", "max_runtime"} <= set(keys)
    assert {"kind", "target", "timeout", "lock_wait", "description"} <= set(keys)


def test_unknown_key_inside_a_list_item_lists_the_items_keys(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + """tasks:
      tidy: {kind: file_cleanup, rules: [{path: data, age: 30d, acton: delete}]}
    """)
    text = config_error(path)
    assert "tasks.tidy.rules[0].acton: unknown key; valid keys: " in text
    keys = text.split("valid keys: ", 1)[1].split(", ")
    assert {"action", "age", "age_by", "include", "exclude", "path"} <= set(keys)
    assert keys == sorted(keys)


def test_unknown_or_missing_task_kind_lists_the_kinds(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + "tasks:\n  shrink: {kind: vacum, target: local}\n")
    assert config_error(path) == (
        f"{path}: tasks.shrink.kind: unknown task kind 'vacum'; choose one of: {KINDS}")
    path = write_config(LOCAL + "tasks:\n  shrink: {target: local}\n")
    assert f"tasks.shrink.kind: required key is missing; choose one of: {KINDS}" in \
        config_error(path)


def test_task_on_an_undefined_target_lists_the_targets(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + "tasks:\n  shrink: {kind: vacuum, target: ghost}\n")
    assert config_error(path) == (
        f"{path}: tasks.shrink.target: unknown target 'ghost'; defined targets: host, local")


def test_a_task_on_an_undefined_target_still_has_its_parameters_checked(
        write_config: WriteConfig) -> None:
    """A mistyped `targets:` key must not hide every task's own mistakes until it is fixed."""
    path = write_config('target:\n  local: {url: "sqlite:///app.sqlite3"}\n'
                        "tasks:\n  shrink: {kind: vacuum, target: local, min_free_procent: 5}\n")
    problems = config_error(path).splitlines()
    assert f"{path}: tasks.shrink.target: unknown target 'local'; defined targets: host" \
        in problems
    assert any(p.startswith(f"{path}: tasks.shrink.min_free_procent: unknown key; valid keys: ")
               for p in problems), problems


@pytest.mark.parametrize(("value", "shown"), [("30x", "'30x'"), ("30", "30"), ("30m", "'30m'")])
def test_bad_retention(write_config: WriteConfig, value: str, shown: str) -> None:
    path = write_config(LOCAL + f"""tasks:
      purge-sessions: {{kind: cleanup, target: local, table: s, date_column: d,
                        retention: {value}}}
    """)
    text = config_error(path)
    assert text.startswith(f"{path}: tasks.purge-sessions.retention: invalid duration {shown}: ")
    assert "30d" in text and "15min" in text


def test_bad_durations_in_a_target_and_in_common_task_keys(write_config: WriteConfig) -> None:
    text = config_error(write_config('targets:\n  local: {url: "sqlite:///a.db", timeout: 5, '
                                     'lock_timeout: soon}\n'))
    assert "targets.local.timeout: invalid duration 5" in text
    assert "targets.local.lock_timeout: invalid duration 'soon'" in text
    text = config_error(write_config(LOCAL + "tasks:\n  shrink: {kind: vacuum, target: local, "
                                             "timeout: 1x, lock_wait: 10}\n"))
    assert "tasks.shrink.timeout: invalid duration '1x'" in text
    assert "tasks.shrink.lock_wait: invalid duration 10" in text


@pytest.mark.parametrize("cron", ["61 * * * *", "0 2 * *", "every night", "0 25 * * *"])
def test_bad_cron(write_config: WriteConfig, cron: str) -> None:
    path = write_config(LOCAL + "tasks:\n  shrink: {kind: vacuum, target: local}\n"
                        f'schedules:\n  nightly: {{cron: "{cron}", tasks: [shrink]}}\n')
    text = config_error(path)
    assert text.startswith(f"{path}: schedules.nightly.cron: invalid cron expression {cron!r}")


def test_unknown_url_scheme_lists_the_known_schemes(write_config: WriteConfig) -> None:
    path = write_config('targets:\n  mongo: {url: "mongodb://127.0.0.1:27017/app"}\n')
    assert config_error(path) == (f"{path}: targets.mongo.url: no connector handles the scheme "
                                  f"'mongodb'; known schemes: {SCHEMES}")


def test_missing_environment_variable(write_config: WriteConfig) -> None:
    path = write_config('targets:\n  app: {url: '
                        '"postgresql://app:${APP_DB_PASSWORD}@127.0.0.1:5432/app"}\n')
    text = config_error(path, env={"OTHER": "x"})
    assert text.startswith(f"{path}: targets.app.url: environment variable APP_DB_PASSWORD is "
                           "not set and has no default")
    path = write_config('api: {tokens: ["fixed-token", "${WELLKEPT_API_TOKEN}"]}\n')
    assert "api.tokens[1]: environment variable WELLKEPT_API_TOKEN is not set" in \
        config_error(path)


def test_schedule_listing_an_unknown_task(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + "tasks:\n  shrink: {kind: vacuum, target: local}\n"
                        'schedules:\n  daily: {cron: "0 2 * * *", tasks: [shrink, purge]}\n')
    assert config_error(path) == (
        f"{path}: schedules.daily.tasks[1]: unknown task 'purge'; defined tasks: shrink")


def test_schedule_entry_name_at_target_names_one_of_the_instances_targets(
        write_config: WriteConfig) -> None:
    two = 'targets:\n  a: {url: "sqlite:///a.db"}\n  b: {url: "sqlite:///b.db"}\n'
    shrink = "tasks:\n  shrink: {kind: vacuum, targets: [a, b]}\n"
    ok = write_config(two + shrink + 'schedules:\n  d: {cron: "@daily", tasks: [shrink@b]}\n')
    assert load_config(ok).schedules["d"].tasks == ["shrink@b"]
    path = write_config(two + shrink + 'schedules:\n  d: {cron: "@daily", tasks: [shrink@c, '
                        "vacuum@a]}\n")
    assert config_error(path).splitlines() == [
        f"{path}: schedules.d.tasks[0]: task 'shrink' does not run on 'c' (write shrink@TARGET "
        "with one of its targets: a, b)",
        f"{path}: schedules.d.tasks[1]: unknown task 'vacuum@a'; defined tasks: shrink"]
    # an instance named NAME@TARGET may not also read as NAME on one of its targets
    path = write_config(two + shrink + "  shrink@a: {kind: stats, target: a}\n")
    assert config_error(path) == (
        f"{path}: tasks.shrink@a: the name also reads as task 'shrink' on its target 'a' "
        "(NAME@TARGET in a schedule); rename one of the two")


def test_schedule_listing_a_defined_but_invalid_task_does_not_call_it_unknown(
        write_config: WriteConfig) -> None:
    path = write_config(LOCAL + "tasks:\n  shrink: {kind: vacuum, target: local, force: maybe}\n"
                        'schedules:\n  daily: {cron: "0 2 * * *", tasks: [shrink]}\n')
    text = config_error(path)
    assert "tasks.shrink.force" in text
    # `shrink` is defined (just invalid); calling it unknown sends the user on a false trail
    assert "unknown task 'shrink'" not in text


def test_yaml_syntax_error_gives_the_line(write_config: WriteConfig) -> None:
    path = write_config('targets:\n  local: {url: "sqlite:///a.db"\n  other: 1\n')
    text = config_error(path)
    assert text.startswith(f"{path}: line 3, column 3: not valid YAML")
    assert "top level must be a mapping" in config_error(write_config("- a\n- b\n"))


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "wellkept.yml"
    path.write_bytes("tasks: {}\n".encode("utf-16"))  # Notepad's "Unicode", with its BOM
    assert config_error(path) == (f"{path}: not UTF-8 text (byte 0xff at offset 0); save the "
                                  "file as UTF-8")
    proc = run_cli("-c", str(path), "check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_a_key_written_twice_in_one_mapping_is_a_config_error(write_config: WriteConfig) -> None:
    """YAML parsers keep the last of two equal keys, so a second task named like the first
    replaced it without a word: the first task was simply gone."""
    path = write_config("""
        tasks:
          purge: {kind: stats, target: host}
          other: {kind: stats, target: host}
          purge: {kind: stats, target: host, top: 3}
        """)
    assert config_error(path) == (
        f"{path}: line 5, column 3: not valid YAML (duplicate key 'purge', first written on "
        "line 3; the second would silently replace the first)")
    inline = write_config('targets:\n  t: {url: "sqlite:///a.db", url: "sqlite:///b.db"}\n')
    assert "duplicate key 'url', first written on line 2" in config_error(inline)
    merged = write_config("tasks:\n  a: &base {kind: stats, target: host, top: 5}\n"
                          "  b: {<<: *base, top: 3}\n")  # a key given beside a merge wins
    assert load_config(merged, env={}).tasks["b"].params.top == 3  # type: ignore[attr-defined]


def test_an_empty_name_is_a_config_error(write_config: WriteConfig) -> None:
    """'' was taken for 'no target' here and there: a task on target '' was said to have no
    target, and no command line can name it."""
    path = write_config('targets:\n  "": {url: "sqlite:///a.db"}\n'
                        'tasks:\n  "": {kind: stats, target: ""}\n'
                        'schedules:\n  "": {cron: "@daily", tasks: []}\n')
    problems = config_error(path).splitlines()
    for section in ("targets", "tasks", "schedules"):
        assert f"{path}: {section}: a name may not be empty" in problems, problems
    assert not any("has no target" in p for p in problems), problems


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "wellkept.yml"
    text = config_error(path)
    assert "no config file" in text and f"wellkept init --path {path}" in text


def test_bad_timezone_executor_and_threshold_name(write_config: WriteConfig) -> None:
    path = write_config("timezone: Mars/Olympus\nexecutor: {kind: threads}\n"
                        "alerts: {thresholds: {cpu_pct: {warning: 80}}}\n")
    text = config_error(path)
    assert "timezone: unknown timezone 'Mars/Olympus'" in text
    assert "executor.kind: 'threads' is not allowed; choose one of: 'inline' or 'celery'" in text
    assert "alerts.thresholds.cpu_pct: 'cpu_pct' is not allowed; choose one of: " in text


def test_a_channel_url_that_cannot_be_parsed_is_a_config_error(
        write_config: WriteConfig) -> None:
    # it used to load, and then every run that raised an alert crashed with a traceback
    path = write_config(LOCAL + 'alerts: {channels: ["json://[bad/hook", '
                                '"smtp://mail:twentyfive/?to=ops@example.com"]}\n')
    text = config_error(path)
    assert "alerts.channels: 'json://[bad/hook' is not a valid URL: Invalid IPv6 URL" in text
    # (the first bad URL is reported; the port of a built-in sender must be a number)
    path = write_config(LOCAL + 'alerts: {channels: ["smtp://mail:twentyfive/?to=a@x"]}\n')
    assert "is not a valid URL: Port could not be cast" in config_error(path)
    # an Apprise URL's netloc is Apprise's business (a Telegram bot token has a colon)
    path = write_config(LOCAL + 'alerts: {channels: ["tgram://123456:ABCdef/42"]}\n')
    assert load_config(path, env={}).alerts.channels == ["tgram://123456:ABCdef/42"]


def test_the_celery_executor_needs_a_broker_and_a_shared_store(
        write_config: WriteConfig) -> None:
    text = config_error(write_config("executor: {kind: celery, routes: {nowhere: q}}\n"))
    assert "executor.broker: required with kind celery" in text
    assert "executor.kind: celery needs a state store that every worker shares" in text
    assert "executor.routes.nowhere: unknown target 'nowhere'" in text
    bad = config_error(write_config("executor: {kind: celery, broker: 'http://u:pw@h/'}\n"))
    assert "executor.broker: 'http://u:***@h/' is not a Redis or RabbitMQ URL" in bad
    good = load_config(write_config("""\
        state: postgresql://wellkept@127.0.0.1/wellkept
        targets: {app: {url: "sqlite:///app.sqlite3"}}
        executor: {kind: celery, broker: "amqp://guest:guest@127.0.0.1:5672//",
                   routes: {app: near-app}, requeue_after: 30s}
        """))
    assert good.executor.queues == ["maintenance", "near-app"]
    assert (good.executor.queue_for("app"), good.executor.queue_for("host")) == \
        ("near-app", "maintenance")


def test_several_problems_are_reported_at_once(write_config: WriteConfig) -> None:
    path = write_config("""\
        targets:
          local: {url: "sqlite:///app.sqlite3"}
          mongo: {url: "mongodb://h/db"}
        tasks:
          a: {kind: nope, target: local}
          b: {kind: vacuum, target: ghost}
          c: {kind: cleanup, target: local, table: t, date_column: d, retention: 30}
        schedules:
          daily: {cron: "0 2 * * *", tasks: [zzz]}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    paths = [p.split(":", 1)[0] for p in info.value.problems]
    assert paths == ["targets.mongo.url", "tasks.a.kind", "tasks.b.target", "tasks.c.retention",
                     "schedules.daily.tasks[0]"]


def test_structural_and_semantic_problems_are_reported_together(
        write_config: WriteConfig) -> None:
    """An unknown key in a target must not hide an unknown task kind elsewhere in the file."""
    path = write_config("""\
        targets:
          local: {url: "sqlite:///app.sqlite3", colour: red}
        tasks:
          a: {kind: nope, target: local}
    """)
    text = config_error(path)
    assert "targets.local.colour: unknown key" in text
    assert "tasks.a.kind: unknown task kind 'nope'" in text


# --- interpolation, paths, defaults -------------------------------------------------------------


def test_interpolation_with_and_without_defaults(write_config: WriteConfig) -> None:
    path = write_config("""\
        targets:
          app: {url: "postgresql://app:${APP_DB_PASSWORD}@${DB_HOST:-127.0.0.1}:5432/app"}
          other: {url: "postgresql://app@${DB2_HOST:-fallback}/x"}
        api: {tokens: ["${WELLKEPT_API_TOKEN}", "${NONE:-}"]}
    """)
    s = load_config(path, env={"APP_DB_PASSWORD": "pw1", "DB2_HOST": "db2",
                               "WELLKEPT_API_TOKEN": "tok"})
    assert s.targets["app"].url == "postgresql://app:pw1@127.0.0.1:5432/app"
    assert s.targets["other"].url == "postgresql://app@db2/x"
    assert s.api.tokens == ["tok"]       # an empty token is no token


def test_default_applies_when_the_variable_is_set_but_empty(write_config: WriteConfig) -> None:
    """`${VAR:-default}` means "unset or empty" in every shell and in docker compose."""
    path = write_config('targets:\n  db: {url: "sqlite:///${DB_FILE:-app.sqlite3}"}\n')
    s = load_config(path, env={"DB_FILE": ""})
    assert s.targets["db"].url == f"sqlite:///{path.parent / 'app.sqlite3'}"


def test_interpolation_reads_os_environ_by_default(write_config: WriteConfig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_TEST_TZ", "Europe/Berlin")
    assert load_config(write_config("timezone: ${WK_TEST_TZ}\n")).timezone == "Europe/Berlin"


def test_dollar_escaping(write_config: WriteConfig) -> None:
    path = write_config('targets:\n  app: {url: "postgresql://app:pa$$w$rd@h/db"}\n'
                        'api: {tokens: ["$${NOT_A_VAR}", "$$$${X}"]}\n')
    s = load_config(path, env={})
    assert s.targets["app"].url == "postgresql://app:pa$w$rd@h/db"
    assert s.api.tokens == ["${NOT_A_VAR}", "$${X}"]


def test_relative_file_urls_resolve_against_the_config_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "wellkept.yml"
    path.write_text('targets:\n  local: {url: "sqlite:///data/app.sqlite3"}\n'
                    '  abs: {url: "sqlite:////srv/app.sqlite3"}\n'
                    '  duck: {url: "duckdb:///an.duckdb"}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)      # a different working directory must not matter
    s = load_config(path, env={})
    assert s.targets["local"].url == f"sqlite:///{folder / 'data' / 'app.sqlite3'}"
    assert s.targets["abs"].url == "sqlite:////srv/app.sqlite3"
    assert s.targets["duck"].url == f"duckdb:///{folder / 'an.duckdb'}"
    assert s.state == f"sqlite:///{folder / '.wellkept' / 'state.db'}"
    assert s.base_dir == folder


@pytest.mark.parametrize("scheme", ["sqlite", "duckdb", "files"])
def test_a_file_url_with_two_slashes_is_refused(write_config: WriteConfig, scheme: str) -> None:
    """'files://uploads' has no path at all (urllib reads 'uploads' as a host): the target
    was the working directory, wherever wellkept was started, and file_cleanup acted there."""
    for url in (f"{scheme}://data/app", f"{scheme}:///"):
        path = write_config(f'targets:\n  t: {{url: "{url}"}}\n')
        assert config_error(path) == (
            f"{path}: targets.t.url: {url!r} names no path; write {scheme}:///relative/path "
            f"(three slashes) or {scheme}:////absolute/path")


@pytest.mark.parametrize("db", ["abc", "l1", "1/2", "-1"])
def test_a_redis_url_whose_database_is_not_a_number_is_refused(write_config: WriteConfig,
                                                               db: str) -> None:
    """redis-py ignores a database it cannot read as a number and uses database 0, so a typo
    (l1 for 11) would have had cache_cleanup delete keys in database 0."""
    path = write_config(f'targets:\n  c: {{url: "redis://127.0.0.1:6379/{db}"}}\n')
    assert config_error(path) == (
        f"{path}: targets.c.url: the Redis database is {db!r}, not a number from 0; write "
        "redis://HOST:6379/N (database 0 when left out)")
    for good in ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/", "rediss://h:6380/11",
                 "redis://:pw@127.0.0.1/3?socket_timeout=2", "redis://127.0.0.1?db=4"):
        load_config(write_config(f'targets:\n  c: {{url: "{good}"}}\n'), env={})


def test_implicit_host_target_and_defaults(write_config: WriteConfig) -> None:
    s = load_config(write_config(""), env={})
    assert list(s.targets) == ["host"]
    assert s.targets["host"].url == "host://localhost"
    assert s.targets["host"].timeout == timedelta(seconds=5)
    assert (s.timezone, s.tasks, s.schedules, s.executor.kind) == ("UTC", {}, {}, "inline")
    s = load_config(write_config("tasks:\n  sizes: {kind: stats, target: host}\n"), env={})
    assert s.tasks["sizes"].target == "host"


def test_settings_are_frozen(write_config: WriteConfig) -> None:
    s = load_config(write_config(LOCAL + "tasks:\n  sizes: {kind: stats, target: local}\n"),
                    env={})
    for obj, attr in [(s, "timezone"), (s.targets["local"], "url"), (s.tasks["sizes"], "kind"),
                      (s.tasks["sizes"].params, "top"), (s.alerts, "cooldown")]:
        with pytest.raises(ValidationError, match="frozen"):
            setattr(obj, attr, "changed")


def test_find_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WELLKEPT_CONFIG", raising=False)
    assert find_config() == tmp_path / "wellkept.yml"
    monkeypatch.setenv("WELLKEPT_CONFIG", "/etc/wk.yml")
    assert find_config() == Path("/etc/wk.yml")
    assert find_config("given.yml") == Path("given.yml")


CONTRACT_EXAMPLE = """\
state: sqlite:///.wellkept/state.db
timezone: UTC
targets:
  app:       {url: "postgresql://app:${APP_DB_PASSWORD}@127.0.0.1:5432/app", lock_timeout: 5s,
              statement_timeout: 10min}
  shop:      {url: "mysql://root@127.0.0.1:3306/shop"}
  local:     {url: "sqlite:///data/app.sqlite3"}
  analytics: {url: "duckdb:///data/analytics.duckdb"}
  cache:     {url: "redis://127.0.0.1:6379/0"}
tasks:
  purge-sessions: {kind: cleanup, target: app, table: django_session, date_column: expire_date,
                   retention: 30d, mode: delete, batch_size: 5000}
  archive-audit: {kind: cleanup, target: app, table: audit_log, date_column: created_at,
                  retention: 90d}
  nightly-vacuum: {kind: vacuum, target: app}
  nightly-backup: {kind: backup, target: app, destination: "backups/"}
schedules:
  daily_maintenance: {cron: "0 2 * * *", tasks: [purge-sessions, nightly-vacuum]}
  weekly_optimization: {cron: "0 3 * * 0", tasks: [nightly-vacuum], enabled: false}
alerts:
  channels: ["mailto://ops@example.com", "json://127.0.0.1:9000/hook"]
  cooldown: 15min
  thresholds:
    connection_percent: {warning: 80, critical: 95}
    query_seconds:      {warning: 2,  critical: 5}
    replication_lag_seconds: {warning: 5, critical: 30}
    cpu_percent:    {warning: 80}
    memory_percent: {warning: 85}
    disk_percent:   {warning: 85, critical: 95}
executor: {kind: inline}
api: {listen: "127.0.0.1:8000", tokens: ["${WELLKEPT_API_TOKEN}"]}
"""


def test_contract_example_loads(write_config: WriteConfig) -> None:
    path = write_config(CONTRACT_EXAMPLE)
    s = load_config(path, env={"APP_DB_PASSWORD": "pw", "WELLKEPT_API_TOKEN": "tok"})
    assert sorted(s.targets) == ["analytics", "app", "cache", "host", "local", "shop"]
    assert s.targets["app"].statement_timeout == timedelta(minutes=10)
    purge = s.tasks["purge-sessions"]
    assert (purge.kind, purge.target, purge.lock_wait) == ("cleanup", "app", timedelta(minutes=10))
    assert purge.params.retention == timedelta(days=30)  # type: ignore[attr-defined]
    assert purge.params.batch_size == 5000  # type: ignore[attr-defined]
    assert s.schedules["weekly_optimization"].enabled is False
    assert s.alerts.thresholds["disk_percent"].critical == 95
    assert s.alerts.cooldown == timedelta(minutes=15)
    assert s.api.tokens == ["tok"]


# --- through the real CLI -----------------------------------------------------------------------

CLI_CASES = {
    "top-level": ("colour: blue\n", "colour: unknown key"),
    "target-key": ('targets:\n  t: {url: "sqlite:///app.sqlite3", x: 1}\n', "targets.t.x"),
    "task-key": ("tasks:\n  v: {kind: vacuum, target: local, x: 1}\n", "tasks.v.x"),
    "kind": ("tasks:\n  v: {kind: nope, target: local}\n", "tasks.v.kind"),
    "target": ("tasks:\n  v: {kind: vacuum, target: ghost}\n", "tasks.v.target"),
    "duration": ("tasks:\n  p: {kind: cleanup, target: local, table: events, "
                 "date_column: created_at, retention: 30}\n", "tasks.p.retention"),
    "cron": ('tasks:\n  v: {kind: vacuum, target: local}\nschedules:\n'
             '  s: {cron: "61 * * * *", tasks: [v]}\n', "schedules.s.cron"),
    "scheme": ('targets:\n  m: {url: "mongodb://h/db"}\n', "targets.m.url"),
    "env": ('targets:\n  a: {url: "postgresql://a:${APP_DB_PASSWORD}@h/a"}\n',
            "APP_DB_PASSWORD"),
    "schedule-task": ('tasks:\n  v: {kind: vacuum, target: local}\nschedules:\n'
                      '  s: {cron: "0 2 * * *", tasks: [v, w]}\n', "schedules.s.tasks[1]"),
    "yaml": ("tasks: [\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_config_errors_exit_2_and_run_nothing(
        case: str, write_config: WriteConfig, app_db: Path) -> None:
    body, key_path = CLI_CASES[case]
    base = 'targets:\n  local: {url: "sqlite:///app.sqlite3"}\n'
    text = body if body.startswith(("targets", "tasks: [")) else base + body
    path = write_config(text)
    before = app_db.read_bytes()
    for args in (["run", "--all"], ["check"]):
        proc = run_cli("-c", str(path), *args, cwd=path.parent)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.startswith(f"error: {path}: "), proc.stderr
        assert key_path in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (path.parent / ".wellkept" / "state.db").exists()
    assert app_db.read_bytes() == before


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = run_cli("run", "--all", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {tmp_path / 'wellkept.yml'}: no config file")
    assert not (tmp_path / ".wellkept").exists()


# --- secrets ------------------------------------------------------------------------------------

SECRET = "s3cret-pw"


def _secret_config(write_config: WriteConfig) -> Path:
    return write_config(f"""\
        targets:
          app: {{url: "postgresql://app:{SECRET}@127.0.0.1:{free_port()}/app", timeout: 2s}}
    """)


def test_check_never_shows_the_password(write_config: WriteConfig) -> None:
    path = _secret_config(write_config)
    text = run_cli("-c", str(path), "check", cwd=path.parent)
    assert text.returncode == 1, text.stderr
    assert SECRET not in text.stdout + text.stderr
    assert "***" in text.stdout
    js = run_cli("-c", str(path), "check", "--output", "json", cwd=path.parent)
    assert js.returncode == 1
    assert SECRET not in js.stdout + js.stderr
    app = {t["target"]: t for t in json.loads(js.stdout)["targets"]}["app"]
    assert app["url"].startswith("postgresql://app:***@127.0.0.1:")
    assert app["status"] == "down" and app["error"]


def test_config_error_messages_never_show_the_password(write_config: WriteConfig) -> None:
    path = write_config(f'targets:\n  app: {{url: "//app:{SECRET}@127.0.0.1:1/app"}}\n')
    text = config_error(path)
    assert SECRET not in text and "//app:***@127.0.0.1:1/app" in text and "has no scheme" in text
    proc = run_cli("-c", str(path), "check", cwd=path.parent)
    assert proc.returncode == 2
    assert SECRET not in proc.stderr and "***" in proc.stderr


@pytest.mark.parametrize(("char", "start"), [("#", "s3cr3tpw"), ("/", "s3cr3tpw"),
                                             ("?", "s3cr3tpw"), ("#", "2024")])
def test_a_password_that_breaks_the_url_is_a_config_error_that_never_shows_it(
        write_config: WriteConfig, char: str, start: str) -> None:
    """'#', '/' and '?' end a URL's host part: unencoded in a password (typically through
    ${VAR}), the port read back was the password's start, and every run crashed with it
    ('Port could not be cast to integer value as …') in the message, history and log."""
    path = write_config('targets:\n  pg: {url: "postgresql://app:${DB_PW}@127.0.0.1:1/app"}\n')
    password = f"{start}{char}x"
    text = config_error(path, env={"DB_PW": password})
    assert start not in text
    assert f"{path}: targets.pg.url: cannot read the host and port" in text
    assert "percent-encode" in text
    proc = run_cli("-c", str(path), "run", "stats", "--target", "pg", cwd=path.parent,
                   env={"DB_PW": password})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert start not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    encoded = {"#": "%23", "/": "%2F", "?": "%3F"}[char]  # the fix the message gives works
    load_config(path, env={"DB_PW": f"{start}{encoded}x"})


def test_failed_run_json_never_shows_the_password(write_config: WriteConfig,
                                                  app_db: Path) -> None:
    path = write_config(f"""\
        state: "postgresql://wk:{SECRET}@127.0.0.1:{free_port()}/state"
        targets:
          local: {{url: "sqlite:///{app_db.name}"}}
    """)
    proc = run_cli("-c", str(path), "run", "integrity", "--target", "local", "--output", "json",
                   cwd=path.parent)
    assert proc.returncode == 1, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    (run,) = json.loads(proc.stdout)["results"]
    assert run["status"] == "failed"
    assert "wk:***@127.0.0.1" in run["message"]


def test_cleanup_presets_and_seed_rule_aliases(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + """tasks:
  s: {kind: cleanup, target: local, preset: django_sessions}
  a: {kind: cleanup, target: local, preset: django_admin_log}
  a-del: {kind: cleanup, target: local, preset: django_admin_log, mode: delete}
  a-seed-del: {kind: cleanup, target: local, preset: django_admin_log, cleanup_type: delete}
  seed: {kind: cleanup, target: local, table: t, date_column: d, retention_days: 7,
         cleanup_type: archive}
""")
    tasks = load_config(path).tasks
    s, a, a_del, seed = (tasks[n].params for n in ("s", "a", "a-del", "seed"))
    # the seed's own key for mode overrides the preset as mode does: no archive table
    assert (tasks["a-seed-del"].params.mode, tasks["a-seed-del"].params.archive_to) \
        == ("delete", None)
    assert (s.table, s.date_column, s.mode) == ("django_session", "expire_date", "delete")
    assert s.retention.days == 30
    assert (a.table, a.mode, a.archive_to) == ("django_admin_log", "archive",
                                               "django_admin_log_archive")
    assert (a_del.mode, a_del.archive_to) == ("delete", None)
    assert (seed.retention.days, seed.mode, seed.archive_to) == (7, "archive", "t_archive")
    bad = write_config(LOCAL + "tasks:\n  b: {kind: cleanup, target: local, table: t, "
                               "date_column: d, retention: 1d, retention_days: 2}\n")
    with pytest.raises(ConfigError, match=r"tasks\.b: give retention or retention_days"):
        load_config(bad)
    files = write_config(LOCAL + "tasks:\n  f: {kind: cleanup, target: local, table: t, "
                                 "date_column: d, retention: 1d, mode: archive, "
                                 "archive_to: a.jsonl}\n")
    with pytest.raises(ConfigError, match=r"archive files end in \.jsonl\.gz, \.csv\.gz or"):
        load_config(files)


@pytest.mark.parametrize(("kind", "name"), [
    ("optimize", "min_free_bytes"), ("reindex", "min_bytes"), ("bloat", "min_bytes"),
    ("index_health", "unused_min_bytes"), ("checkpoint", "min_wal_bytes")])
def test_byte_thresholds_take_sizes_as_users_write_them(kind: str, name: str) -> None:
    from pydantic import ValidationError

    from wellkept.registry import Registry

    params = Registry.default().task_class(kind).Params
    assert getattr(params(**{name: "64M"}), name) == 64 * 1024 * 1024
    assert getattr(params(**{name: "1.5k"}), name) == 1536
    assert getattr(params(**{name: 4096}), name) == 4096
    assert getattr(params(**{name: 4096.0}), name) == 4096  # YAML's float spelling
    for wrong in ("lots", -1, "5 parsecs", 1.5):
        with pytest.raises(ValidationError, match="invalid size"):
            params(**{name: wrong})


def test_an_archive_file_shared_by_several_targets_is_refused(write_config: WriteConfig) -> None:
    """Rows of two databases in one file, each run's recovery checking the other's batches
    against its own table: the file name must hold {target}."""
    body = ('targets:\n  a: {url: "sqlite:///a.db"}\n  b: {url: "sqlite:///b.db"}\ntasks:\n'
            "  t: {kind: cleanup, targets: [a, b], table: ev, date_column: ts, retention: 30d, "
            "mode: archive, archive_to: %s}\n")
    text = config_error(write_config(body % '"archive/ev-{date}.jsonl.gz"'))
    assert "tasks.t.archive_to: the task runs on 2 targets, which would share this file; put " \
           "{target} in its name, e.g. 'archive/{target}/ev-{date}.jsonl.gz'" in text, text
    for fine in ('"archive/{target}-ev.csv.gz"', "ev_archive"):  # its own file; a table
        assert load_config(write_config(body % fine), env={}).tasks["t"].targets == ["a", "b"]
