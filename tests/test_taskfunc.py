"""The Python API (CONTRACT §6): ``@wellkept.task`` functions become task kinds, registered
by ``plugins:`` or by entry point, and run through the same engine as built-in kinds."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

import wellkept
from tests.helpers import run_cli
from wellkept.records import TaskResult
from wellkept.taskfunc import _as_result

MODULE = '''\
import wellkept

@wellkept.task(name="reindex_search", recoverable=True, checkpoint_every=25, priority=2)
def reindex_search(ctx, index: str, batch: int = 500) -> None:
    """Rebuild the search index, in steps.

    A longer explanation for `wellkept tasks reindex_search`."""
    start = ctx.resumed_from["name"] if ctx.resumed_from else None
    ctx.checkpoint("loaded", 10, {"last_id": 7})
    for percent in (30, 40, 60, 90):
        ctx.progress(percent, f"step-{percent}", index)
    return {"documents": batch, "index": index}

@wellkept.task()
async def ping_later(ctx, word: str = "pong") -> str:
    """Answer, asynchronously."""
    return word * 2
'''


@pytest.fixture
def plugin_config(tmp_path: Path) -> Path:
    (tmp_path / "search_tasks.py").write_text(MODULE)
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(textwrap.dedent("""\
        plugins: [search_tasks]
        tasks:
          reindex: {kind: reindex_search, index: products, batch: 50}
          pong: {kind: ping_later}
        """))
    return cfg


def test_a_function_task_runs_like_a_builtin_through_the_cli(plugin_config: Path) -> None:
    result = run_cli("-c", str(plugin_config), "run", "reindex", "pong", "-o", "json")
    assert result.returncode == 0, result.stderr
    reindex, pong = json.loads(result.stdout)["results"]
    assert (reindex["kind"], reindex["target"], reindex["status"]) == \
        ("reindex_search", "host", "completed")
    assert reindex["metrics"] == {"documents": 50} and reindex["details"]["index"] == "products"
    assert pong["message"] == "pongpong"
    history = json.loads(run_cli("-c", str(plugin_config), "history", "-o", "json").stdout)
    assert {h["task"] for h in history} == {"reindex", "pong"}


def test_checkpoint_every_records_checkpoints_from_progress(plugin_config: Path) -> None:
    from wellkept.config import load_config
    from wellkept.engine import Engine

    engine = Engine(load_config(plugin_config))
    (record,) = engine.run(engine.resolve(["reindex"])).results
    with engine.store.engine.connect() as conn:
        import sqlalchemy as sa

        from wellkept.history.schema import checkpoints

        rows = conn.execute(sa.select(checkpoints.c.name, checkpoints.c.percent,
                                      checkpoints.c.data)
                            .where(checkpoints.c.run_id == record.run_id)
                            .order_by(checkpoints.c.id)).all()
    # explicit at 10%; then every 25 points of progress, carrying the last explicit data
    assert [(n, p) for n, p, _ in rows] == [("loaded", 10.0), ("step-40", 40.0),
                                            ("step-90", 90.0)]
    assert all(d == {"last_id": 7} for _, _, d in rows)


def test_the_kind_documents_itself(plugin_config: Path) -> None:
    shown = run_cli("-c", str(plugin_config), "tasks", "reindex_search")
    assert shown.returncode == 0, shown.stderr
    assert "Rebuild the search index, in steps." in shown.stdout
    assert "A longer explanation" in shown.stdout
    assert "index" in shown.stdout and "batch" in shown.stdout


def test_parameters_are_validated_at_load_time(tmp_path: Path) -> None:
    (tmp_path / "search_tasks.py").write_text(MODULE)
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text("plugins: [search_tasks]\ntasks:\n"
                   "  r: {kind: reindex_search, batch: many, colour: red}\n")
    result = run_cli("-c", str(cfg), "check")
    assert result.returncode == 2
    assert "tasks.r.index: required key is missing" in result.stderr
    assert "tasks.r.batch: Input should be a valid integer" in result.stderr
    assert "tasks.r.colour: unknown key" in result.stderr


def test_a_task_registered_by_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ep_tasks-1.0.dist-info").mkdir(parents=True)
    (site / "ep_tasks-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ep-tasks\nVersion: 1.0\n")
    (site / "ep_tasks-1.0.dist-info" / "entry_points.txt").write_text(
        "[wellkept.tasks]\nreindex_search = ep_tasks:reindex_search\n")
    (site / "ep_tasks.py").write_text(MODULE)
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text("tasks:\n  r: {kind: reindex_search, index: books}\n")
    env = {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = run_cli("-c", str(cfg), "run", "r", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["details"]["index"] == "books"


def test_the_decorated_function_stays_callable_and_typed() -> None:
    @wellkept.task(name="double", recoverable=True, checkpoint_every=10, priority=4,
                   timeout="5min")
    def double(ctx: Any, n: int, label: str = "x") -> int:
        """Double n."""
        return n * 2

    assert double(None, 21) == 42
    cls = double.task_class
    assert (cls.kind, cls.resumable, cls.recoverable, cls.priority, cls.checkpoint_every) == \
        ("double", True, True, 4, 10)
    assert cls.default_timeout.total_seconds() == 300 and cls.summary() == "Double n."
    assert [p["name"] for p in cls.parameters()] == ["n", "label"]
    assert cls.parameters()[0]["required"] and cls.parameters()[1]["default"] == "x"
    assert not cls.has_validate()

    @double.validator
    def done(ctx: Any, n: int, label: str) -> bool:
        return n > 10

    assert cls.has_validate()


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(TypeError, match="first parameter must be ctx"):
        wellkept.task()(lambda: None)
    with pytest.raises(TypeError, match=r"\*\*kw"):
        @wellkept.task()
        def loose(ctx: Any, **kw: Any) -> None:
            pass
    with pytest.raises(ValueError, match="percentage"):
        wellkept.task(checkpoint_every=0)
    with pytest.raises(ValueError, match="0-10"):
        wellkept.task(priority=11)


def test_what_a_function_returns_becomes_the_result() -> None:
    assert _as_result(None, "k").message == "k completed"
    assert _as_result("done", "k").message == "done"
    mixed = _as_result({"rows": 3, "ok": True, "name": "x"}, "k")
    assert mixed.metrics == {"rows": 3} and mixed.details == {"ok": True, "name": "x"}
    kept = TaskResult(message="mine")
    assert _as_result(kept, "k") is kept
    with pytest.raises(TypeError, match="returned int"):
        _as_result(5, "k")
