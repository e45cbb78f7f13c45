"""reconcile: compare keyed records between two sources that should agree."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from wellkept.context import RunContext
from wellkept.reconciliation import sources
from wellkept.reconciliation.compare import Report, Spill, Tolerance
from wellkept.records import Metrics, TaskResult
from wellkept.registry import Registry
from wellkept.task import Task, TaskParams
from wellkept.types import RunStatus
from wellkept.units import plural


class Source(TaskParams):
    target: str = Field(description="the target read (an SQL database or Redis)")
    query: str | None = Field(None, description="SQL targets: the query (run read-only)")
    redis: Literal["hash", "set"] | None = Field(None, description=(
        "Redis targets: read the hashes (fields are the record) or the sets (each member "
        "is a record) whose keys match `pattern`"))
    pattern: str | None = Field(None, description="Redis: SCAN MATCH pattern, e.g. 'positions:*'")
    key_from_name: str | None = Field(None, description=(
        "Redis: fields taken from the key's name, e.g. 'positions:{symbol}'; keys that do "
        "not fit are left out"))
    member_as: str = Field("member", description="Redis sets: the field the member becomes")
    rename: dict[str, str] = Field({}, description=(
        "rename this side's fields to the common names: {qty: quantity}"))

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.query is None) == (self.redis is None):
            raise ValueError("give either query (SQL) or redis: hash|set (Redis)")
        if self.redis is not None and not self.pattern:
            raise ValueError("redis: a pattern is needed, e.g. pattern: 'positions:*'")
        if self.redis is not None and self.pattern and not self.pattern.strip("*?[]"):
            raise ValueError("pattern: wildcards alone would read every key; name a prefix")
        return self


class ReconcileParams(TaskParams):
    left: Source = Field(description="one side: {target, query} or {target, redis, pattern}")
    right: Source = Field(description="the other side, in the same shape")
    key: list[str] = Field(min_length=1, description="the field(s) that identify a record")
    fields: list[str] | None = Field(None, description=(
        "the fields compared (default: every field both sides have, besides the key)"))
    tolerance: dict[str, float | str] = Field({}, description=(
        "per field, how far numbers may differ: absolute (0.01) or relative ('0.5%')"))
    default_tolerance: float | str = Field(0.0, description="for the other numeric fields")
    max_differences: int = Field(100, ge=1, le=100_000, description=(
        "differences listed in the details, per kind (the counts are always complete)"))
    batch_size: int = Field(5000, ge=1, le=1_000_000, description="records read at a time")

    @field_validator("tolerance")
    @classmethod
    def _tolerances(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        for name, tol in value.items():
            try:
                Tolerance.parse(tol)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value

    @field_validator("default_tolerance")
    @classmethod
    def _default(cls, value: float | str) -> float | str:
        Tolerance.parse(value)
        return value

    def named_targets(self) -> list[tuple[str, str]]:
        return [("left.target", self.left.target), ("right.target", self.right.target)]


class Reconcile(Task):
    """Compare keyed records between two sources that should agree, field by field.

    Each side is an SQL query on any SQL target (PostgreSQL, MySQL/MariaDB, SQLite, DuckDB;
    run read-only, streamed) or Redis hashes or sets matched by a pattern (SCAN, then HGETALL
    or SSCAN; fields can be taken from the key's name with `key_from_name`). Records are
    matched on `key`; keys are compared as text, with numbers normalised (5, 5.0 and '5' are
    one key). Both sides are spilled to a scratch SQLite file and compared there, so neither
    is held in memory, whatever its size.

    It reports the keys missing on each side, the records whose fields differ (numbers
    within the field's `tolerance`, absolute or relative, are equal; other values are
    compared as text), and keys found twice on one side. The run is `completed` when the two
    sides agree and `failed` when they do not; the message says how, and the details list
    the differences up to `max_differences` of each kind, with complete counts.

    It runs on the implicit `host` target and reads the two targets named by its sides.
    Read-only.
    """

    kind = "reconcile"
    Params = ReconcileParams
    default_timeout = timedelta(hours=1)
    default_target = "host"

    def run(self, ctx: RunContext) -> TaskResult:
        p = self.params
        assert isinstance(p, ReconcileParams)
        settings = ctx.whole_settings()
        registry = ctx.registry or Registry.default()
        scratch = Path(tempfile.mkdtemp(prefix="wellkept-reconcile-"))
        spill = Spill(scratch, p.key)
        try:
            for side, spec in (("left", p.left), ("right", p.right)):
                target = settings.targets[spec.target]
                connector = registry.connector_class(target.scheme)(spec.target, target)
                try:
                    if spec.query is not None:
                        ctx.issued(spec.query)
                    with sources.records(connector, spec, p.batch_size) as batches:
                        for batch in batches:
                            ctx.check_cancelled()
                            spill.add(side, batch)
                finally:
                    connector.close()
                ctx.progress(50.0 if side == "left" else 90.0, f"read {side}",
                             f"{spill.rows[side]:,} records from {spec.target}")
            report = spill.compare(p.fields, {k: Tolerance.parse(v)
                                              for k, v in p.tolerance.items()},
                                   Tolerance.parse(p.default_tolerance), p.max_differences)
        finally:
            spill.close()
            shutil.rmtree(scratch, ignore_errors=True)
        return self._result(p, report)

    def _result(self, p: ReconcileParams, report: Report) -> TaskResult:
        c = report.counts
        metrics: Metrics = {**c, "rows_matched": c["keys_matched"]}
        details: dict[str, Any] = {
            "left": p.left.target, "right": p.right.target, "key": p.key,
            "missing_right": report.missing["missing_right"],
            "missing_left": report.missing["missing_left"],
            "mismatched": report.mismatched, "mismatched_fields": report.field_counts,
            "duplicates": report.duplicates}
        sides = f"{p.left.target} ({c['rows_left']:,}) and {p.right.target} ({c['rows_right']:,})"
        if report.agree:
            return TaskResult(message=f"agree: {plural(c['keys_matched'], 'record')} match "
                                      f"between {sides}", metrics=metrics, details=details)
        parts = []
        if c["missing_right"]:
            parts.append(f"{c['missing_right']:,} missing from {p.right.target}")
        if c["missing_left"]:
            parts.append(f"{c['missing_left']:,} missing from {p.left.target}")
        if c["mismatched"]:
            fields = ", ".join(f"{k} {v:,}" for k, v in sorted(report.field_counts.items()))
            parts.append(f"{c['mismatched']:,} mismatched ({fields})")
        for side in ("left", "right"):
            if c[f"duplicates_{side}"]:
                parts.append(f"{c[f'duplicates_{side}']:,} duplicate keys in "
                             f"{getattr(p, side).target}")
        message = f"disagree between {sides}: " + "; ".join(parts)
        return TaskResult(status=RunStatus.FAILED, message=message, metrics=metrics,
                          details=details, errors=[message])
