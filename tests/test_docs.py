"""Everything a user can name is documented: task kinds, commands, advice rules."""

from __future__ import annotations

import re
from pathlib import Path

from wellkept.registry import Registry

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_task_kind_has_its_own_page_linked_from_the_index() -> None:
    index = (DOCS / "tasks.md").read_text(encoding="utf-8")
    for kind in Registry().task_names():
        page = DOCS / "tasks" / f"{kind}.md"
        assert page.exists(), f"docs/tasks/{kind}.md is missing"
        assert page.read_text(encoding="utf-8").startswith(f"# {kind}\n"), page
        assert f"(tasks/{kind}.md)" in index, f"docs/tasks.md does not link {kind}"


def test_links_between_docs_resolve() -> None:
    for page in [*DOCS.rglob("*.md"), DOCS.parent / "README.md"]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[\w-]*)?\)", text):
            if target.startswith("http"):
                continue
            assert (page.parent / target).resolve().exists(), f"{page.name}: broken {target}"


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


def test_systemd_units_in_the_docs_have_no_comments_after_a_value() -> None:
    """systemd reads a `#` after a value as part of it (only whole lines are comments): with
    `EnvironmentFile=-/etc/wellkept/env   # …` the file named is that whole text, and the `-`
    makes its absence silent, so the unit would start without its passwords."""
    found = []
    for page in [*DOCS.rglob("*.md"), DOCS.parent / "README.md"]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```ini\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                stripped = line.strip()
                if stripped.startswith(("#", ";")) or "=" not in stripped:
                    continue
                if re.search(r"\s[#;]", stripped.split("=", 1)[1]):
                    found.append(f"{page.name}: {stripped}")
    assert not found, found
