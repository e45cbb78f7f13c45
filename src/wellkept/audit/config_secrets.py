"""Secrets written in plain text in the wellkept config, where ``${ENV}`` should be used.

The file is read again as written, before interpolation: a value that comes from
``${VAR}`` is fine, a literal password is not. Found: passwords inside URLs, values of keys
named like secrets (password, token, secret, api_key, …), API tokens, and age identities.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from wellkept.connector import Finding
from wellkept.redact import MASK

SECRET_KEY = re.compile(r"(?i)(pass(word|wd)?|secret|token|api_?key|access_?key|private_?key"
                        r"|credentials?)$")


def _is_reference(value: str) -> bool:
    return "${" in value


def check(path: Path) -> Iterator[Finding]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return
    yield from _walk(raw, (), path)


def _walk(node: Any, where: tuple[str, ...], path: Path) -> Iterator[Finding]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*where, str(key)), path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*where, f"[{i}]"), path)
    elif isinstance(node, str) and node:
        yield from _value(node, where, path)


def _dotted(where: tuple[str, ...]) -> str:
    return "".join(p if p.startswith("[") else f".{p}" for p in where).lstrip(".")


def _value(value: str, where: tuple[str, ...], path: Path) -> Iterator[Finding]:
    key = _dotted(where)
    last = next((p for p in reversed(where) if not p.startswith("[")), "")
    if "AGE-SECRET-KEY-" in value.upper():
        yield _finding("critical", key, path, "an age identity (private key)", value[:18])
        return
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password and not _is_reference(password) and password != MASK:
            # masked where it stands, between "user:" and "@": the same text may also be
            # the scheme or the user name (postgresql://postgres:postgres@…)
            at = value.find(f":{password}@", value.index("://") + 3)
            shown = (value[:at + 1] + password[:2] + MASK + value[at + 1 + len(password):]
                     if at >= 0 else MASK)
            yield _finding("warning", key, path, "a password in a URL", shown)
        return
    if (SECRET_KEY.search(last) or where[:2] == ("api", "tokens")) and not _is_reference(value):
        yield _finding("warning", key, path, f"a literal {last or 'token'}",
                       value[:2] + MASK)


def _finding(severity: str, key: str, path: Path, what: str, shown: str) -> Finding:
    return Finding("config_secret", severity, f"{path}:{key}",
                   f"{key} in {path.name} holds {what} in plain text; use ${{ENV}} instead "
                   "(e.g. ${APP_DB_PASSWORD})", {"key": key, "excerpt": shown})
