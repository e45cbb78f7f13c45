"""The secret patterns logs are scanned for, and how a match is shown (redacted).

Each pattern has a name, a severity and a regular expression; when the expression has a group,
the group is the secret (the rest is context such as ``password=``). The built-in list is
documented in docs/tasks/security_audit.md; `security_audit` takes more with ``patterns`` and
switches built-ins off with ``disable_patterns``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wellkept.redact import MASK


@dataclass(frozen=True)
class SecretPattern:
    name: str
    severity: str
    regex: re.Pattern[str]
    description: str


def _p(name: str, severity: str, regex: str, description: str) -> SecretPattern:
    return SecretPattern(name, severity, re.compile(regex), description)


BUILTIN: tuple[SecretPattern, ...] = (
    _p("aws_access_key_id", "critical", r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b",
       "AWS access key id"),
    _p("aws_secret_access_key", "critical",
       r"(?i)aws_?secret_?access_?key[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
       "AWS secret access key next to its name"),
    _p("google_api_key", "critical", r"\b(AIza[0-9A-Za-z\-_]{35})(?![0-9A-Za-z\-_])",
       "Google Cloud API key"),
    _p("gcp_service_account_key", "critical", r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\"",
       "a Google service-account key file's private_key_id"),
    _p("private_key", "critical",
       r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
       "a PEM/OpenSSH/PGP private key"),
    _p("age_secret_key", "critical", r"\b(AGE-SECRET-KEY-1[0-9A-Z]{58})\b", "an age identity"),
    _p("url_password", "critical",
       r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@\"']+:([^@\s/\"'*][^@\s/\"']*)@",
       "a password inside a URL (scheme://user:password@host)"),
    _p("bearer_token", "critical", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)",
       "an HTTP bearer token (Authorization: Bearer …)"),
    _p("github_token", "critical", r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b",
       "a GitHub token"),
    _p("slack_token", "critical", r"\b(xox[abposr]-[A-Za-z0-9-]{10,})", "a Slack token"),
    _p("stripe_live_key", "critical", r"\b((?:sk|rk)_live_[0-9a-zA-Z]{24,})\b",
       "a Stripe live secret key"),
    _p("jwt", "warning",
       r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
       "a JSON Web Token"),
    _p("password_assignment", "warning",
       r"(?i)\b(?:password|passwd|pwd|secret|api_?key|access_?token)[\"']?\s*[=:]\s*[\"']?"
       r"([^\s\"',;&*]{6,})",
       "password=…, secret: … and the like"),
)


def compile_extra(name: str, regex: str, severity: str) -> SecretPattern:
    """A user pattern (checked at config load)."""
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"pattern {name!r}: not a regular expression: {exc}") from None
    if compiled.groups > 1:
        raise ValueError(f"pattern {name!r}: use at most one group (the secret)")
    return SecretPattern(name, severity, compiled, "configured in the task")


def secret_span(match: re.Match[str]) -> tuple[int, int]:
    return match.span(1) if match.re.groups and match.group(1) is not None else match.span()


def excerpt(line: str, match: re.Match[str], width: int = 60,
            others: tuple[re.Match[str], ...] = ()) -> str:
    """The line around the match with the secret masked: its first 4 characters stay, so a
    reader can tell which key it was, and nothing that would let it be used. ``others`` are
    the line's other matches (of any pattern): a secret they found next to this one is
    masked in the excerpt too, so no excerpt shows a secret some other finding masks."""
    start, end = secret_span(match)
    lo, hi = max(0, start - width), min(len(line), end + width)
    spans: list[tuple[int, int, bool]] = []
    for m in (match, *others):
        s, e = secret_span(m)
        if e > lo and s < hi:
            spans.append((s, e, m.re.groups > 0))
    merged: list[list[Any]] = []
    for s, e, hide in sorted(spans):
        if merged and s < merged[-1][1]:  # overlapping secrets are masked as one
            merged[-1][1] = max(merged[-1][1], e)
            merged[-1][2] = merged[-1][2] or hide
        else:
            merged.append([s, e, hide])
    out, pos = ["…" if lo > 0 else ""], lo
    for s, e, hide in merged:
        s = max(s, pos)
        out.append(line[pos:s])
        secret = line[s:e]
        out.append(secret[:4] + MASK if hide else secret)
        pos = e
    if pos < hi:
        out.append(line[pos:hi])
    if max(pos, hi) < len(line):
        out.append("…")
    return "".join(out).replace("\n", " ").replace("\r", " ")
