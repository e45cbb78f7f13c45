"""Secrets never reach output: URL passwords, ``password=`` pairs and registered secrets."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wellkept.config import load_config
from wellkept.redact import MASK, redact, register_secret, url_password


def _unique(prefix: str = "pw") -> str:
    """A secret no other test uses (registered secrets are process-wide)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://app:s3cret@db.example.com:5432/app",
     "postgresql://app:***@db.example.com:5432/app"),
    ("postgres://app:s3cret@127.0.0.1/app", "postgres://app:***@127.0.0.1/app"),
    ("postgresql+psycopg://wk:hunter2@127.0.0.1:5432/state",
     "postgresql+psycopg://wk:***@127.0.0.1:5432/state"),
    ("mysql://root:toor@127.0.0.1:3306/shop", "mysql://root:***@127.0.0.1:3306/shop"),
    ("redis://:cachepw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("rediss://default:tls-pw@cache:6380/1", "rediss://default:***@cache:6380/1"),
    ("amqp://guest:guest@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
    ("POSTGRESQL://APP:UPPER@H/DB", "POSTGRESQL://APP:***@H/DB"),
    ("postgresql://app:p%40ss%3Aw@h/db", "postgresql://app:***@h/db"),
    ("mailto://ops:mail-pw@127.0.0.1:2525?to=a@example.com",
     "mailto://ops:***@127.0.0.1:2525?to=a@example.com"),
    ("postgresql://app:2024secret@h/db", "postgresql://app:***@h/db"),
    # digits then / ? or #: still a password, however odd (an unencoded one urlsplit misreads)
    ("postgresql://app:2024/x@db/shop", "postgresql://app:***@db/shop"),
    ("error: postgresql://app:1/2@db failed", "error: postgresql://app:***@db failed"),
    ("postgresql://app:12#34@db", "postgresql://app:***@db"),
    ("mysql://root:99?z@db/x", "mysql://root:***@db/x"),
    ("redis://:1234/abc@cache:6379/0", "redis://:***@cache:6379/0"),
    ("smtp://user:25/secret@mail", "smtp://user:***@mail"),
])
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "mysql://root@127.0.0.1:3306/shop",
    "sqlite:///data/app.sqlite3",
    "duckdb:///data/analytics.duckdb",
    "redis://127.0.0.1:6379/0",
    "host://localhost",
    "postgresql://127.0.0.1:5432/app",
    "deleted 1523 rows older than 30d in 1 batch",
    "user@example.com wrote: time 12:30",
    "mailto://127.0.0.1:2525?to=ops@example.com&from=wk@example.com",
    "https://hooks.example.com:8443/notify?reply=ops@example.com",
])
def test_text_without_passwords_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_every_url_in_a_longer_text_is_masked() -> None:
    text = ("primary postgresql://app:first-pw@10.0.0.1/app failed, "
            "fallback mysql://root:second-pw@10.0.0.2/shop also failed")
    out = redact(text)
    assert "first-pw" not in out and "second-pw" not in out
    assert out.count(MASK) == 2
    assert "postgresql://app:***@10.0.0.1/app" in out
    assert "mysql://root:***@10.0.0.2/shop" in out


def test_the_username_host_and_database_stay_readable() -> None:
    out = redact("cannot connect to postgresql://reporting:pw-value@db.internal:6543/sales")
    assert out == "cannot connect to postgresql://reporting:***@db.internal:6543/sales"


# --- password= pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("host=db password=abc123 dbname=app", "host=db password=*** dbname=app"),
    ("PASSWORD=abc123", "PASSWORD=***"),
    ("password = abc123 sslmode=require", "password = *** sslmode=require"),
    ("password='two words' user=app", "password=*** user=app"),
    ('password="two words" user=app', "password=*** user=app"),
    ("options: user=app password=x", "options: user=app password=***"),
])
def test_password_pairs_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_quoted_password_pair_leaks_no_part_of_the_value() -> None:
    out = redact("connect(host='db', password='correct horse battery', port=5432)")
    for word in ("correct", "horse", "battery"):
        assert word not in out
    assert "port=5432" in out


def test_words_merely_containing_password_are_left_alone() -> None:
    text = "password authentication failed for user app"
    assert redact(text) == text


# --- registered secrets -------------------------------------------------------------------------


def test_a_registered_secret_is_masked_anywhere_in_text() -> None:
    secret = _unique()
    register_secret(secret)
    text = f"driver said: FATAL auth failed (tried {secret!r}); retry with{secret}inline"
    out = redact(text)
    assert secret not in out
    assert out.count(MASK) == 2
    assert out.startswith("driver said: FATAL auth failed")


def test_a_secret_is_masked_in_multiline_text_and_tracebacks() -> None:
    secret = _unique("tok")
    register_secret(secret)
    text = f'Traceback (most recent call last):\n  File "x.py", line 1\n    token = "{secret}"\n'
    out = redact(text)
    assert secret not in out
    assert 'token = "***"' in out


def test_longer_secrets_are_masked_before_their_prefixes() -> None:
    short = _unique("ab")
    long = short + "-extended-part"
    register_secret(short)
    register_secret(long)
    out = redact(f"value={long}.")
    assert out == "value=***."


@pytest.mark.parametrize("value", [None, "", "x", "ab"])
def test_empty_and_very_short_secrets_are_not_registered(value: str | None) -> None:
    register_secret(value)
    # masking every "x" or "ab" would make all output unreadable
    assert redact("x marks the spot; abc") == "x marks the spot; abc"


def test_redaction_is_idempotent() -> None:
    secret = _unique()
    register_secret(secret)
    text = f"postgresql://app:{secret}@h/db password=abc {secret}"
    once = redact(text)
    assert redact(once) == once
    assert secret not in once and "abc" not in once


# --- url_password -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://app:s3cret@h:5432/db", "s3cret"),
    ("redis://:only-pw@h:6379/0", "only-pw"),
    ("mysql://root@h/shop", None),
    ("sqlite:///data/app.sqlite3", None),
    ("http://[::1", None),            # invalid URL: no crash
])
def test_url_password(url: str, expected: str | None) -> None:
    assert url_password(url) == expected


# --- wiring: config load registers target passwords; logs are redacted -------------------------


def test_loading_a_config_registers_target_passwords_for_later_messages(tmp_path: Path) -> None:
    secret = _unique("dbpw")
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'targets:\n  app: {{url: "postgresql://app:{secret}@127.0.0.1:1/app"}}\n',
                   encoding="utf-8")
    settings = load_config(cfg, env={})
    assert settings.targets["app"].redacted_url == "postgresql://app:***@127.0.0.1:1/app"
    # a driver message that quotes the password on its own (no URL around it) is masked too
    assert redact(f"server rejected password {secret} for app") == \
        "server rejected password *** for app"


def test_loading_a_config_registers_the_state_store_password(tmp_path: Path) -> None:
    secret = _unique("statepw")
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text(f'state: "postgresql://wk:{secret}@127.0.0.1:1/state"\n', encoding="utf-8")
    load_config(cfg, env={})
    assert secret not in redact(f"auth failed: {secret}")


def test_interpolated_passwords_are_registered_too(tmp_path: Path) -> None:
    secret = _unique("envpw")
    cfg = tmp_path / "wellkept.yml"
    cfg.write_text('targets:\n  app: {url: "postgresql://app:${APP_DB_PASSWORD}@h/app"}\n',
                   encoding="utf-8")
    settings = load_config(cfg, env={"APP_DB_PASSWORD": secret})
    assert settings.targets["app"].url == f"postgresql://app:{secret}@h/app"
    assert redact(f"echo {secret}") == "echo ***"


@pytest.fixture
def restore_wellkept_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger("wellkept")
    saved = (list(root.handlers), root.level, root.propagate)
    yield root
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def test_cli_log_lines_are_redacted(restore_wellkept_logger: logging.Logger) -> None:
    from wellkept.cli.common import State

    secret = _unique("logpw")
    register_secret(secret)
    State(config=None, output="text", verbose=0, quiet=False).setup_logging()
    logger = logging.getLogger("wellkept.test_redact")
    handler = restore_wellkept_logger.handlers[0]
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1,
                               "connect %s failed for %s",
                               ("postgresql://u:inline-pw@h/db", secret), None)
    assert handler.filter(record)
    text = record.getMessage()
    assert "inline-pw" not in text and secret not in text
    assert text == "connect postgresql://u:***@h/db failed for ***"


def test_cli_log_tracebacks_are_redacted(restore_wellkept_logger: logging.Logger) -> None:
    """A crash logged with exc_info prints the exception text: it must be masked too."""
    from wellkept.cli.common import State

    State(config=None, output="text", verbose=0, quiet=False).setup_logging()
    handler = restore_wellkept_logger.handlers[0]
    try:
        raise RuntimeError("boom talking to postgresql://app:tb-secret@h/db")
    except RuntimeError:
        exc_info = sys.exc_info()
    logger = logging.getLogger("wellkept.test_redact")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "run crashed", (),
                               exc_info)
    assert handler.filter(record)
    text = handler.format(record)
    assert "run crashed" in text and "RuntimeError" in text
    assert "tb-secret" not in text
