"""PostgreSQL advice: the rules that turn checks into recommendations, as data.

Each rule names the check it reads, a severity, whether wellkept may apply it, and how to write
the statement and the reason. `docs/advice.md` documents every rule; a test keeps the two in
step. Ids are ``rule:object`` and stable from run to run, so `wellkept advise --apply ID`
recomputes the advice and applies only what is still recommended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wellkept.connector import Advice, AdviceReport, Finding
from wellkept.errors import WellkeptError
from wellkept.records import Action

if TYPE_CHECKING:
    from wellkept.connectors.postgresql import PostgresConnector


@dataclass(frozen=True)
class Rule:
    id: str
    source: str          # the plan or the index_health check it reads
    severity: str
    applicable: bool
    statement: str      # for findings: a template over {ident} and the evidence
    reason: str


RULES: tuple[Rule, ...] = (
    Rule("vacuum", "plan:vacuum", "warning", True, "(from the vacuum plan)",
         "dead tuples or transaction-ID age past the vacuum thresholds"),
    Rule("analyze", "plan:analyze", "info", True, "(from the analyze plan)",
         "statistics missing or stale, so the planner works from old figures"),
    Rule("reindex", "plan:reindex", "warning", True, "(from the reindex plan)",
         "index bloat past the reindex thresholds, or an invalid leftover to drop"),
    Rule("drop-duplicate-index", "duplicate_index", "warning", True,
         "DROP INDEX CONCURRENTLY {ident}",
         "{message}: every query it serves can use the other index, and each write pays "
         "for both"),
    Rule("drop-unused-index", "unused_index", "info", True,
         "DROP INDEX CONCURRENTLY {ident}",
         "{message}; it costs every write. Check replicas first: idx_scan is per server"),
    Rule("rebuild-invalid-index", "invalid_index", "warning", True,
         "REINDEX INDEX CONCURRENTLY {ident}",
         "{message}: queries cannot use it, but writes still maintain it"),
    Rule("fix-invalid-unique-index", "invalid_unique_index", "warning", False,
         "-- find the duplicate keys ({definition}), resolve them, then REINDEX INDEX "
         "CONCURRENTLY {ident}; or DROP INDEX CONCURRENTLY {ident} if it is not needed",
         "{message}: a unique index that failed to build usually means duplicate keys, so a "
         "rebuild fails the same way"),
    Rule("widen-sequence", "sequence", "critical", False, "-- {remedy}",
         "{message}: inserts fail once it is exhausted"),
    Rule("freeze-old-tables", "wraparound", "critical", False,
         "-- run the `vacuum` task (it FREEZEs tables past freeze_age) and check that "
         "autovacuum keeps up",
         "{message}: at 100% PostgreSQL stops accepting writes"),
    Rule("end-idle-transaction", "idle_in_transaction", "warning", False,
         "SELECT pg_terminate_backend({pid})",
         "{message}: it holds back vacuum and may hold locks; fix the application first"),
)
BY_SOURCE = {r.source: r for r in RULES}


def advise(connector: PostgresConnector) -> AdviceReport:
    from wellkept.tasks.analyze import AnalyzeParams
    from wellkept.tasks.index_health import IndexHealthParams
    from wellkept.tasks.reindex import ReindexParams
    from wellkept.tasks.vacuum import VacuumParams

    advice: list[Advice] = []
    errors: list[str] = []
    plans = (("plan:vacuum", connector.plan_vacuum, VacuumParams()),
             ("plan:analyze", connector.plan_analyze, AnalyzeParams()),
             ("plan:reindex", connector.plan_reindex, ReindexParams()))
    for source, plan, params in plans:
        rule = BY_SOURCE[source]
        try:
            actions = plan(params)
        except WellkeptError as exc:  # one plan failing must not hide the others
            errors.append(f"{source.removeprefix('plan:')}: {exc}")
            continue
        for action in actions:
            advice.append(Advice(id=f"{rule.id}:{action.object}", rule=rule.id,
                                 severity=rule.severity, object=action.object,
                                 reason=action.reason, statement=action.statement,
                                 evidence=action.evidence, action=action))
    report = connector.check_index_health(IndexHealthParams())
    errors.extend(f"index_health: {e}" for e in report.errors)
    # One piece of advice per index, and never one that contradicts another: an index that a
    # dropped duplicate relies on must stay (whatever its scan count), and of two identical
    # indexes only one is dropped.
    dropped: set[str] = set()
    keep: set[str] = set()
    for f in report.findings:
        if f.check == "duplicate_index" and f.object not in keep:
            dropped.add(f.object)
            keep.add(_qualified(f.evidence.get("schema"), f.evidence.get("covered_by")))
    for finding in report.findings:
        if finding.check == "duplicate_index" and finding.object not in dropped:
            continue
        if finding.check == "unused_index" and finding.object in dropped | keep:
            continue
        check = finding.check
        if check == "invalid_index" and finding.evidence.get("unique"):
            check = "invalid_unique_index"
        found = BY_SOURCE.get(check)
        if found is None or (finding.check == "invalid_index" and
                            (finding.evidence.get("leftover") or finding.evidence.get("building"))):
            continue  # leftovers come from the reindex plan; builds in progress are left alone
        advice.append(_from_finding(connector, found, finding))
    order = {"critical": 0, "warning": 1, "info": 2}
    return AdviceReport(sorted(advice, key=lambda a: (order.get(a.severity, 3), a.id)), errors)


def _qualified(schema: Any, name: Any) -> str:
    text = str(name or "")
    return text if "." in text else f"{schema}.{text}"


def _from_finding(connector: PostgresConnector, rule: Rule, finding: Finding) -> Advice:
    from psycopg import sql

    ev: dict[str, Any] = finding.evidence
    ident = ""
    if "schema" in ev and "index" in ev:
        ident = sql.Identifier(ev["schema"], ev["index"]).as_string(connector.conn)
    fields = {**{k: v for k, v in ev.items() if isinstance(v, str | int | float)},
              "ident": ident, "object": finding.object, "message": finding.message}
    statement = rule.statement.format_map(_Blank(fields))
    reindex = statement.startswith("REINDEX")
    meta: dict[str, Any] = {"op": "advice", "unbounded": "CONCURRENTLY" in statement,
                            # a failed REINDEX CONCURRENTLY leaves a leftover: no retry, and
                            # the leftover is dropped at once
                            "retry": not reindex}
    if reindex:
        meta["index"] = (ev.get("schema"), ev.get("index"))
    action = (Action(finding.object, statement, rule.reason.format_map(_Blank(fields)), ev,
                     meta=meta) if rule.applicable else None)
    return Advice(id=f"{rule.id}:{finding.object}", rule=rule.id,
                  severity=finding.severity,
                  object=finding.object, reason=rule.reason.format_map(_Blank(fields)),
                  statement=statement, evidence=ev, action=action)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"
