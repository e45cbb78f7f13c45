"""Emergency conditions: the grammar, its errors, and evaluation over flattened health."""

from __future__ import annotations

import pytest

from wellkept.conditions import Condition
from wellkept.history.health_figures import flatten

HEALTH = {  # CONTRACT §3's health document, as the health task records it
    "status": "degraded", "score": 71,
    "targets": {"app": {"status": "up"}, "cache": {"status": "down"}},
    "host": {"cpu_percent": 12.0, "memory_percent": 40.1,
             "disk": [{"path": "/", "percent": 45.2}, {"path": "/data", "percent": 93.5}]},
    "alerts": [{"name": "disk_percent", "severity": "critical", "value": 93.5}],
}


def test_health_is_flattened_to_figure_names() -> None:
    figures = flatten(HEALTH)
    assert figures == {
        "cpu_percent": 12.0, "memory_percent": 40.1, "disk_percent": 93.5,
        "disk_percent[/]": 45.2, "disk_percent[/data]": 93.5, "health_score": 71.0,
        "target_up[app]": 1.0, "target_up[cache]": 0.0, "targets_down": 1.0,
        "alerts_critical": 1.0, "alerts_warning": 0.0}


@pytest.mark.parametrize("text, holds", [
    ("disk_percent > 90", True),
    ("disk_percent > 95", False),
    ("disk_percent[/] > 90", False),
    ("disk_percent[/data] >= 93.5", True),
    ("disk_percent > 90%", True),
    ("cpu_percent > 80 or memory_percent > 30", True),
    ("cpu_percent > 80 and memory_percent > 30", False),
    ("(cpu_percent > 80 or health_score < 75) and targets_down >= 1", True),
    ("target_up[cache] == 0", True),
    ("disk_percent[/nowhere] > 1", False),          # a figure not measured never fires
])
def test_conditions_hold_or_not(text: str, holds: bool) -> None:
    assert Condition.parse(text, {"app", "cache"}).holds(flatten(HEALTH)) is holds


def test_a_condition_lists_the_figures_it_reads() -> None:
    c = Condition.parse("disk_percent > 90 or (cpu_percent > 95 and disk_percent > 80)")
    assert c.figures() == ["disk_percent", "cpu_percent"]


@pytest.mark.parametrize("text, message", [
    ("", "empty condition"),
    ("disk_pct > 90", "unknown figure 'disk_pct'; known figures: cpu_percent"),
    ("disk_percent 90", "expected a comparison"),
    ("disk_percent >", "at position 15: expected a number"),
    ("disk_percent > ninety", "expected a number after '>'"),
    ("disk_percent > 90 and", "expected a figure"),
    ("(disk_percent > 90", "expected ')'"),
    ("disk_percent > 90 cpu_percent > 1", "expected 'and', 'or' or the end"),
    ("target_up > 0", "target_up needs a target"),
    ("target_up[nope] == 1", "unknown target 'nope'; defined targets: app, cache"),
    ("cpu_percent[/] > 1", "cpu_percent takes no [argument]"),
    ("disk_percent > 90 ; drop", "unexpected character"),
])
def test_bad_conditions_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        Condition.parse(text, {"app", "cache"})
