"""The backup manifest: one JSON document per backup, written last, as the completion mark.

A backup is complete exactly when its manifest exists. The manifest names its artifact and
carries everything verification needs (size, sha256, compression, encryption, row counts), so
the catalog can be rebuilt from storage alone.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from wellkept.records import iso_z

MANIFEST_SUFFIX = ".manifest.json"
SCHEMA = 1


def new_backup_id(target: str, at: datetime) -> str:
    """``<target>-<UTC time>-<4 hex>``: sortable by time, unique across processes."""
    return f"{target}-{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Manifest:
    id: str
    task: str
    target: str
    engine: str
    format: str
    database: str
    server_version: str
    tools: dict[str, str]
    started_at: str
    finished_at: str
    artifact: str
    raw_bytes: int
    stored_bytes: int
    sha256: str
    compression: str
    encrypted: bool
    recipient: str
    counts: dict[str, int]
    counts_exact: bool
    wellkept_version: str
    details: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def name(self) -> str:
        return self.id + MANIFEST_SUFFIX

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.finished_at.replace("Z", "+00:00"))


def stamp(at: datetime) -> str:
    return iso_z(at) or ""
