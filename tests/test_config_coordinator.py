"""The coordinator's config: schedule windows and grace, emergency triggers, coordinator and
recovery settings, plugins. Every problem names its key path, at load time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from tests.helpers import run_cli
from tests.test_config import LOCAL, config_error
from wellkept.config import load_config

WriteConfig = Callable[..., Path]
TASKS = "tasks:\n  st: {kind: stats, target: local}\n"


def test_a_full_coordinator_config_loads(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + TASKS + """\
schedules:
  nightly: {cron: "@daily", tasks: [st], window: "sat,sun 01:00-05:00", grace: 2h,
            catch_up: false, timezone: Europe/Berlin}
emergency:
  disk-full: {when: "disk_percent > 90 or target_up[local] == 0", run: [st], cooldown: 30min}
coordinator: {max_concurrent: 4, shutdown_grace: 2min}
recovery: {lease: 30s, max_attempts: 5, resume_above: 10, validate_above: 90, retention: 30d}
""")
    s = load_config(path)
    spec = s.schedule_spec("nightly")
    assert (spec.timezone, spec.grace, spec.catch_up) == ("Europe/Berlin", timedelta(hours=2),
                                                          False)
    assert spec.window is not None and spec.window.text == "sat,sun 01:00-05:00"
    assert s.emergency["disk-full"].cooldown == timedelta(minutes=30)
    assert s.coordinator.max_concurrent == 4 and s.recovery.max_attempts == 5
    assert s.recovery.heartbeat_seconds == 10


def test_every_coordinator_problem_is_reported_with_its_key_path(
        write_config: WriteConfig) -> None:
    path = write_config(LOCAL + TASKS + """\
schedules:
  nightly: {cron: "0 2 * * *", tasks: [st], window: "2-5", grace: 5, timezone: Mars/Base}
emergency:
  disk: {when: "disk_pct > 90", run: [st, nope]}
  cpu: {when: "cpu_percent > 90", run: [st], cooldown: soon}
  lonely: {when: "target_up[ghost] == 0", run: []}
coordinator: {heartbeat: 20s, leader_lease: 30s}
recovery: {resume_above: 90, validate_above: 50}
executor: {max_concurrent: 0}
""")
    text = config_error(path)
    for expected in (
        "schedules.nightly.window: invalid window '2-5': write HH:MM-HH:MM",
        "schedules.nightly.grace: invalid duration 5",
        "schedules.nightly.timezone: unknown timezone 'Mars/Base'",
        "emergency.disk.run[1]: unknown task 'nope'; defined tasks: st",
        "emergency.disk.when: invalid condition 'disk_pct > 90' at position 1: unknown "
        "figure 'disk_pct'",
        "emergency.cpu.cooldown: invalid duration 'soon'",
        "emergency.lonely.run: name at least one task instance to run",
        "emergency.lonely.when: invalid condition 'target_up[ghost] == 0' at position 1: "
        "unknown target 'ghost'",
        "executor.max_concurrent: unknown key",
        "coordinator: leader_lease must be more than twice heartbeat",
        "recovery: validate_above must not be below resume_above",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_an_unimportable_plugin_is_a_config_error(write_config: WriteConfig,
                                                  tmp_path: Path) -> None:
    (tmp_path / "broken_tasks.py").write_text("import no_such_module_anywhere\n")
    path = write_config(LOCAL + "plugins: [broken_tasks, missing_tasks]\n")
    text = config_error(path)
    assert "plugins[0]: cannot import plugin module 'broken_tasks': ModuleNotFoundError" in text
    assert "plugins[1]: cannot import plugin module 'missing_tasks'" in text
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 2 and "plugins[0]" in result.stderr


def test_a_plugin_may_not_take_a_builtin_kind(write_config: WriteConfig,
                                              tmp_path: Path) -> None:
    (tmp_path / "clash_tasks.py").write_text(
        "import wellkept\n\n@wellkept.task(name='vacuum')\ndef vac(ctx):\n    pass\n")
    text = config_error(write_config(LOCAL + "plugins: [clash_tasks]\n"))
    assert "registers the task kind 'vacuum', which is a built-in kind" in text


def test_init_writes_the_five_default_schedules(tmp_path: Path) -> None:
    import json

    path = tmp_path / "wellkept.yml"
    assert run_cli("init", "--path", str(path)).returncode == 0
    (tmp_path / "app.sqlite3").touch()
    listed = run_cli("-c", str(path), "schedule", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    crons = {s["id"]: (s["cron"], s["explain"]) for s in json.loads(listed.stdout)}
    assert crons == {
        "daily_maintenance": ("0 2 * * *", "At 02:00 every day"),
        "weekly_optimization": ("0 3 * * 0", "At 03:00 on Sunday"),
        "monthly_deep_maintenance": ("0 4 1 * *", "At 04:00 on the first day of every month"),
        "backup_testing": ("0 5 * * 6", "At 05:00 on Saturday"),
        "disaster_recovery_test": ("0 6 1 * *", "At 06:00 on the first day of every month"),
    }


def test_a_scheduled_task_needs_a_target(write_config: WriteConfig) -> None:
    path = write_config(LOCAL + """\
tasks:
  loose: {kind: vacuum}
schedules:
  nightly: {cron: "@daily", tasks: [loose]}
emergency:
  full: {when: "disk_percent > 90", run: [loose]}
""")
    text = config_error(path)
    assert "schedules.nightly.tasks[0]: task 'loose' has no target, so it cannot run " \
           "unattended; give it one (tasks.loose.target)" in text
    assert "emergency.full.run[0]: task 'loose' has no target" in text
