"""security_audit: one of each problem planted, each one found; a clean setup finds nothing.

The off-machine database URLs are only strings in the config: the audit parses them and
never connects to them (its role check is limited to the local target with `role_targets`)."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.files.peers import wk

AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


@pytest.fixture
def monitor_role(postgres_db: str) -> Iterator[str]:
    """A login role with pg_monitor only: what wellkept's read-only checks need."""
    role = f"wk_mon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT pg_monitor TO "{role}"')
    db = postgres_db.rsplit("/", 1)[1]
    yield f"postgresql://{role}@127.0.0.1:5432/{db}"
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def prepare(tmp_path: Path, write_config: Callable[[str], Path], text: str) -> Path:
    cfg = write_config(text)
    os.chmod(cfg, 0o600)
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "backups").mkdir(exist_ok=True, mode=0o700)
    os.chmod(tmp_path / "backups", 0o700)
    return cfg


def test_one_of_each_is_found(postgres_db: str, tmp_path: Path,
                              write_config: Callable[[str], Path]) -> None:
    cfg = prepare(tmp_path, write_config, f"""
        targets:
          pg: {{url: "{postgres_db}"}}
          cache: {{url: "redis://:hunter2-plain@127.0.0.1:6379/10"}}
          remote: {{url: "postgresql://app:${{REMOTE_PW:-x}}@db.example.com:5432/app"}}
        api: {{tokens: ["literal-api-token-123"]}}
        tasks:
          nightly-backup: {{kind: backup, target: pg, destination: backups/}}
          audit: {{kind: security_audit, logs: [logs], protect: [keys/signing.pem],
                   role_targets: [pg]}}
        """)
    logs = tmp_path / "logs"
    (logs / "app.log").write_text(
        "2026-11-30 10:00:01 INFO starting\n"
        f"2026-11-30 10:00:02 DEBUG boto3 credentials aws_access_key_id={AWS_KEY}\n"
        "2026-11-30 10:00:03 ERROR connect failed postgresql://trader:S3cretPass@db:5432/t\n"
        "2026-11-30 10:00:04 DEBUG headers "
        "{'Authorization': 'Bearer abcdefghijklmnop1234567890'}\n")
    (logs / "dump.log").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n")
    (logs / "old.log.1.gz").write_bytes(gzip.compress(f"pushed with {GITHUB}\n".encode()))
    (tmp_path / "backups" / "pg-20261130.dump").write_text("backup")
    os.chmod(tmp_path / "backups" / "pg-20261130.dump", 0o644)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signing.pem").write_text("key")
    os.chmod(tmp_path / "keys" / "signing.pem", 0o640)
    result = wk(cfg, "audit")
    assert result["status"] == "failed"
    found = result["details"]["findings"]
    patterns = {f["pattern"] for f in found if f["check"] == "log_secret"}
    assert patterns == {"aws_access_key_id", "url_password", "bearer_token", "private_key",
                        "github_token"}, found
    aws = next(f for f in found if f.get("pattern") == "aws_access_key_id")
    assert AWS_KEY not in aws["excerpt"] and "AKIA***" in aws["excerpt"]
    assert all("S3cretPass" not in f["excerpt"] for f in found if "excerpt" in f)
    assert aws["severity"] == "critical" and aws["line"] == 2
    perms = {Path(f["object"]).name: f["severity"] for f in found if f["check"] == "permissions"}
    assert perms == {"pg-20261130.dump": "critical", "signing.pem": "warning"}
    config = {f["key"] for f in found if f["check"] == "config_secret"}
    assert config == {"targets.cache.url", "api.tokens[0]"}
    assert not any("hunter2-plain" in str(f) for f in found)
    network = [f for f in found if f["check"] == "plaintext_network"]
    assert [f["object"] for f in network] == ["remote"] and network[0]["host"] == "db.example.com"
    roles = [f for f in found if f["check"] == "role"]
    assert len(roles) == 1 and roles[0]["object"] == "pg" and "SUPERUSER" in roles[0]["excess"]
    assert "pg_monitor" in roles[0]["message"]
    m = result["metrics"]
    assert m["findings_critical"] == 6 and m["findings_warning"] == 5 and m["files_processed"] == 3


def test_a_clean_setup_has_no_findings(monitor_role: str, tmp_path: Path,
                                       write_config: Callable[[str], Path]) -> None:
    cfg = prepare(tmp_path, write_config, f"""
        targets:
          pg: {{url: "{monitor_role}"}}
          cache: {{url: "redis://127.0.0.1:6379/10"}}
          remote: {{url: "postgresql://app:${{REMOTE_PW:-}}@db.example.com/app?sslmode=verify-full"}}
          remote-cache: {{url: "rediss://:${{CACHE_PW:-}}@cache.example.com:6380/0"}}
        api: {{tokens: ["${{WELLKEPT_API_TOKEN:-}}"]}}
        tasks:
          nightly-backup: {{kind: backup, target: pg, destination: backups/}}
          audit: {{kind: security_audit, logs: [logs], role_targets: [pg]}}
        """)
    (tmp_path / "logs" / "app.log").write_text(
        "INFO password reset requested for user bob\n"
        "INFO fetched https://example.com/api/v1/prices?symbol=AAPL\n"
        "INFO connected to postgresql://app:***@db:5432/app\n"
        "WARN missing Bearer token in request\n"
        "INFO token refreshed, expires in 3600s\n"
        "DEBUG order id ASIA-PACIFIC-2026 filled\n")
    (tmp_path / "backups" / "pg.dump").write_text("b")
    os.chmod(tmp_path / "backups" / "pg.dump", 0o600)
    result = wk(cfg, "audit")
    assert result["status"] == "completed", result["details"]["findings"]
    assert result["details"]["findings"] == []
    assert result["metrics"]["lines_scanned"] == 6
    state: Any = tmp_path / ".wellkept" / "state.db"
    assert oct(state.stat().st_mode & 0o777) == "0o600"  # wellkept's own state is private


AWS_SECRET = "wJalrXUtnFEMIK7MDENG" + "bPxRfiCYEXAMPLEKEY12"


def test_excerpts_mask_every_secret_of_the_line_and_patterns_extend(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """Secrets side by side on one line: each finding's excerpt masks all of them, not only
    its own; a password that is also the URL's scheme or user is masked where it stands; a
    pattern of one's own is found, a disabled one is not; a world-readable config is found."""
    cfg = prepare(tmp_path, write_config, """
        targets:
          remote: {url: "postgresql://postgres:postgres@db.example.com:5432/app"}
        tasks:
          audit:
            kind: security_audit
            logs: [logs]
            check_roles: false
            patterns:
              - {name: broker_key, regex: "\\\\bBRK-([A-Z0-9]{12})\\\\b", severity: critical}
            disable_patterns: [jwt]
        """)
    os.chmod(cfg, 0o644)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
    (tmp_path / "logs" / "app.log").write_text(
        f"aws_access_key_id={AWS_KEY} aws_secret_access_key={AWS_SECRET}\n"
        f"login password=hunter22 then retry password=hunter22; key BRK-ABCDEFGHIJ12 {jwt}\n")
    result = wk(cfg, "audit")
    assert result["status"] == "failed"
    found = result["details"]["findings"]
    text = json.dumps(result)
    for secret in (AWS_KEY, AWS_SECRET[:12], "hunter22", "BRK-ABCDEFGHIJ12", "postgres@"):
        assert secret not in text, (secret, found)
    by_pattern = {f["pattern"]: f for f in found if f["check"] == "log_secret"}
    assert set(by_pattern) == {"aws_access_key_id", "aws_secret_access_key",
                               "password_assignment", "broker_key"}, found
    assert by_pattern["aws_access_key_id"]["excerpt"] == \
        "aws_access_key_id=AKIA*** aws_secret_access_key=wJal***"
    assert by_pattern["broker_key"]["severity"] == "critical"
    assert "BRK-ABCD***" in by_pattern["broker_key"]["excerpt"]
    url = next(f for f in found if f["check"] == "config_secret")
    assert url["excerpt"] == "postgresql://postgres:po***@db.example.com:5432/app"
    perms = [f for f in found if f["check"] == "permissions"]
    assert [(Path(f["object"]).name, f["severity"]) for f in perms] == [
        ("wellkept.yml", "critical")]


def test_a_state_store_elsewhere_without_tls_is_a_finding() -> None:
    """The state store is a database wellkept uses too: read from its URL only (a run with
    it would connect to it, so the check is called directly)."""
    from wellkept.audit.targets import state_transport

    found = list(state_transport("postgresql+psycopg://wk:S3cret@db.example.com:5432/wk"))
    assert [(f.check, f.severity, f.object) for f in found] == [
        ("plaintext_network", "warning", "state")]
    assert found[0].evidence["host"] == "db.example.com"
    assert "S3cret" not in found[0].evidence["url"] and "S3cret" not in found[0].message
    for fine in ("postgresql://wk:x@db.example.com/wk?sslmode=verify-full",
                 "postgresql://wk@127.0.0.1:5432/wk", "postgresql:///wk?host=/run/postgresql",
                 "sqlite:///.wellkept/state.db"):
        assert list(state_transport(fine)) == [], fine
