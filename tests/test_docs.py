"""Everything a user can name is documented: task kinds, commands, advice rules."""

from __future__ import annotations

import re
from pathlib import Path

from wellkept.registry import Registry

DOCS = Path(__file__).resolve().parent.parent / "docs"


def headings(page: str) -> set[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return {m.group(1).strip("` ") for m in re.finditer(r"^##\s+(.+)$", text, re.M)}


def test_every_task_kind_has_a_section() -> None:
    documented = headings("tasks.md")
    missing = [k for k in Registry().task_names() if k not in documented]
    assert not missing, f"docs/tasks.md lacks a '## <kind>' section for: {missing}"


def test_every_command_is_documented() -> None:
    from wellkept.cli import app

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    names = [c.name for c in app.registered_commands]
    missing = [n for n in names if n and f"wellkept {n}" not in text]
    assert not missing, f"docs/cli.md does not describe: {missing}"


def test_every_advice_rule_is_documented() -> None:
    from wellkept.connectors.pg_advice import RULES

    text = (DOCS / "advice.md").read_text(encoding="utf-8")
    missing = [r.id for r in RULES if f"`{r.id}`" not in text]
    assert not missing, f"docs/advice.md lacks rules: {missing}"
