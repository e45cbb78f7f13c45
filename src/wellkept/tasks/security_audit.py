"""security_audit: leaked secrets, loose permissions, plain-text config secrets, plain-text
network links and over-privileged database roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from wellkept.audit import config_secrets, logs, permissions, targets
from wellkept.audit.patterns import BUILTIN, SecretPattern, compile_extra
from wellkept.connector import Finding
from wellkept.context import RunContext
from wellkept.fs.sizes import ByteSize
from wellkept.records import Metrics, TaskResult
from wellkept.registry import Registry
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import plural

RANK = {"info": 0, "warning": 1, "critical": 2}


class ExtraPattern(TaskParams):
    name: str = Field(description="the finding's pattern name")
    regex: str = Field(description="a Python regular expression; its one group, if any, is "
                                   "the secret")
    severity: Literal["critical", "warning", "info"] = Field("critical", description=(
        "how bad a match is"))

    @model_validator(mode="after")
    def _compiles(self) -> ExtraPattern:
        compile_extra(self.name, self.regex, self.severity)
        return self


class SecurityAuditParams(TaskParams):
    logs: list[str] = Field([], description=(
        "log files or folders to scan for secrets; the file name may be a glob "
        "(logs/*.log*); .gz and .zst are read too"))
    patterns: list[ExtraPattern] = Field([], description=(
        "more secret patterns: [{name, regex, severity}]"))
    disable_patterns: list[str] = Field([], description="built-in patterns to switch off")
    protect: list[str] = Field([], description=(
        "more files or folders that must not be group- or world-readable (key files, "
        "exports); the config, the state file and local backup folders are always checked"))
    check_permissions: bool = Field(True, description="check file permissions")
    check_config: bool = Field(True, description="look for plain-text secrets in the config")
    check_network: bool = Field(True, description=(
        "flag database URLs that reach another machine without TLS"))
    check_roles: bool = Field(True, description=(
        "connect to each target that can tell and flag over-privileged login roles"))
    role_targets: list[str] = Field([], description=(
        "limit the role check, which connects, to these targets (default: every target "
        "that can tell); the network check only reads URLs and covers every target"))
    fail_on: Literal["critical", "warning", "info", "never"] = Field("warning", description=(
        "the run fails when a finding is at least this severe"))
    max_findings: int = Field(200, ge=1, le=100_000, description="findings listed in details")
    max_per_file: int = Field(20, ge=1, description="findings reported per log file")
    max_bytes_per_file: ByteSize = Field(256 * 1024 * 1024, description=(
        "bytes of one log read at most (its start)"))

    @field_validator("disable_patterns")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        names = {p.name for p in BUILTIN}
        unknown = [v for v in value if v not in names]
        if unknown:
            raise ValueError(f"unknown pattern {unknown[0]!r}; built-in patterns: "
                             + ", ".join(sorted(names)))
        return value


    def named_targets(self) -> list[tuple[str, str]]:
        return [(f"role_targets[{i}]", t) for i, t in enumerate(self.role_targets)]


class SecurityAudit(Task):
    """Audit the setup: secrets leaked into logs, loose file permissions, plain-text secrets
    in the config, database URLs without TLS, and over-privileged database roles.

    - Logs (`logs`): every line is matched against documented secret patterns (AWS keys,
      Google keys, private keys, age identities, passwords inside URLs, bearer tokens,
      GitHub/Slack/Stripe tokens, JWTs, `password=` assignments), plus `patterns` of your
      own; a finding shows the line with the secret masked after its first 4 characters.
    - Permissions: the config file, the state store's file, local backup folders and age
      identity files of `backup` tasks, and `protect` paths must not be group- or
      world-readable (world-writable folders are flagged too).
    - The config is read as written, before `${ENV}` interpolation: literal passwords in
      URLs, secret-named keys and API tokens are flagged.
    - Each target's URL, and a PostgreSQL state store's: on another machine and reached
      without TLS (PostgreSQL without sslmode=require/verify-*, redis:// rather than
      rediss://, MySQL).
    - Each PostgreSQL target's login role: SUPERUSER (or CREATEROLE, REPLICATION, BYPASSRLS)
      where pg_monitor and pg_maintain (PostgreSQL 17+) would do.

    Findings have a severity (critical, warning, info). The run fails when one is at least
    `fail_on` (warning by default). It runs on the implicit `host` target. Read-only.
    """

    kind = "security_audit"
    Params = SecurityAuditParams
    default_timeout = timedelta(minutes=30)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, SecurityAuditParams)
        ctx.whole_settings()  # fails at once outside the engine
        stats = logs.ScanStats()
        findings: list[Finding] = []
        for finding in self._all(ctx, p, stats):
            findings.append(finding)
            ctx.check_cancelled()
        findings.sort(key=lambda f: (-RANK[f.severity], f.check, f.object))
        by = {s: sum(1 for f in findings if f.severity == s) for s in RANK}
        metrics: Metrics = {"findings_critical": by["critical"], "findings_warning": by["warning"],
                            "findings_info": by["info"], "files_processed": stats.files,
                            "lines_scanned": stats.lines, "bytes_scanned": stats.bytes}
        details: dict[str, Any] = {
            "findings": [{"check": f.check, "severity": f.severity, "object": f.object,
                          "message": f.message, **f.evidence} for f in findings[:p.max_findings]],
            "checks": {c: sum(1 for f in findings if f.check == c)
                       for c in sorted({f.check for f in findings})}}
        if stats.truncated:
            details["logs_read_in_part"] = stats.truncated[:50]
        worst = max((RANK[f.severity] for f in findings), default=-1)
        if not findings:
            message = (f"no findings: {plural(stats.files, 'log')} scanned, permissions, "
                       "config, targets checked")
        else:
            message = ", ".join(f"{n} {s}" for s, n in sorted(by.items(), key=lambda kv:
                                                              -RANK[kv[0]]) if n)
            message = f"{plural(len(findings), 'finding')} ({message}): {findings[0].message}"
        failed = p.fail_on != "never" and worst >= RANK[p.fail_on]
        return TaskResult(status=RunStatus.FAILED if failed else RunStatus.COMPLETED,
                          message=message, metrics=metrics, details=details,
                          errors=[f.message for f in findings
                                  if p.fail_on != "never" and RANK[f.severity] >= RANK[p.fail_on]
                                  ][:p.max_findings])

    def _all(self, ctx: RunContext, p: SecurityAuditParams,
             stats: logs.ScanStats) -> Iterator[Finding]:
        settings = ctx.whole_settings()
        if p.logs:
            patterns = self._patterns(p)
            prefilter = logs.combined(patterns)
            for path in logs.files_of([ctx.resolve_path(v) for v in p.logs]):
                try:
                    yield from logs.scan_file(path, patterns, prefilter, stats,
                                              p.max_bytes_per_file, p.max_per_file)
                except OSError as exc:
                    yield Finding("log_secret", "info", str(path),
                                  f"{path} could not be read: {exc.strerror}", {})
        if p.check_permissions:
            for path, role in self._protected(ctx):
                yield from permissions.check(path, role)
        if p.check_config and settings.source is not None:
            yield from config_secrets.check(settings.source)
        if p.check_network:
            yield from targets.state_transport(settings.state)
        if p.check_network or p.check_roles:
            registry = ctx.registry or Registry.default()
            for name, target in sorted(settings.targets.items()):
                connector = registry.connector_class(target.scheme)(name, target)
                try:
                    if p.check_network:
                        yield from targets.transport(name, connector)
                    if p.check_roles and (not p.role_targets or name in p.role_targets):
                        yield from targets.roles(name, connector)
                finally:
                    connector.close()

    @staticmethod
    def _patterns(p: SecurityAuditParams) -> list[SecretPattern]:
        chosen = [b for b in BUILTIN if b.name not in p.disable_patterns]
        return chosen + [compile_extra(e.name, e.regex, e.severity) for e in p.patterns]

    def _protected(self, ctx: RunContext) -> Iterator[tuple[Path, str]]:
        p = self.params
        assert isinstance(p, SecurityAuditParams)
        settings = ctx.whole_settings()
        if settings.source is not None:
            yield settings.source, "the config file"
        if settings.state.startswith("sqlite:///"):
            yield Path(settings.state.split(":///", 1)[1]), "the state store"
        for task in settings.tasks.values():
            if task.kind != "backup":
                continue
            params: Any = task.params
            if not str(params.destination).startswith("s3://"):
                yield ctx.resolve_path(params.destination), "the backup folder"
            if params.age_identity_file:
                yield ctx.resolve_path(params.age_identity_file), "the age identity file"
        for value in p.protect:
            path = ctx.resolve_path(value)
            named = logs.files_of([path]) if any(c in path.name for c in "*?[") else [path]
            for one in named:
                yield one, "the protected path"
