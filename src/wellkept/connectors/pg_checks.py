"""PostgreSQL checks: turn the catalog figures (pg_catalog) into reports and findings.

Each section of a check fails alone: its error is reported and the other sections still are.
"""

from __future__ import annotations

from typing import Any

from wellkept.connector import Finding, HealthReport, StatsReport
from wellkept.connectors import pg_catalog
from wellkept.records import Metrics
from wellkept.units import human_bytes


def _sections(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    errors = [f"{name}: {value['error']}" for name, value in data.items()
              if isinstance(value, dict) and set(value) == {"error"}]
    return data, errors


def stats(conn: Any, params: Any) -> StatsReport:
    data, errors = _sections(pg_catalog.database_stats(
        conn, top=params.top, long_query_seconds=params.long_query_seconds,
        timeout_ms=params.catalog_timeout_ms))
    metrics: Metrics = {}
    db = data.get("database") or {}
    if "size_bytes" in db:
        metrics["size_bytes"] = db["size_bytes"]
    conns = data.get("connections") or {}
    if "percent" in conns:
        metrics["connections"] = conns.get("total", 0)
        metrics["connection_percent"] = conns["percent"]
    cache = data.get("cache") or {}
    if cache.get("heap_hit_ratio") is not None:
        metrics["cache_hit_percent"] = cache["heap_hit_ratio"]
    for section, metric in (("long_queries", "long_queries"), ("blocking", "blocked_sessions")):
        if isinstance(data.get(section), list):
            metrics[metric] = len(data[section])
    if data.get("long_queries"):  # the alert figure: the longest of them, in seconds
        metrics["query_seconds"] = max(float(r.get("seconds") or 0)
                                       for r in data["long_queries"])
    replication = data.get("replication") or {}
    lags = [r.get("replay_lag_seconds") or 0 for r in replication.get("replicas", []) or []]
    if replication.get("lag_seconds") is not None:
        lags.append(replication["lag_seconds"])
    if lags:
        metrics["replication_lag_seconds"] = max(lags)
    parts = []
    if "size_bytes" in metrics:
        parts.append(human_bytes(metrics["size_bytes"]))
    if "connection_percent" in metrics:
        parts.append(f"{metrics['connections']:g} connections "
                     f"({metrics['connection_percent']:g}% of max_connections)")
    if "cache_hit_percent" in metrics:
        parts.append(f"cache hit {metrics['cache_hit_percent']:g}%")
    for name, label in (("long_queries", "long-running queries"),
                        ("blocked_sessions", "blocked sessions")):
        if name in metrics:
            parts.append(f"{metrics[name]:g} {label}")
    if "replication_lag_seconds" in metrics:
        parts.append(f"replication lag {metrics['replication_lag_seconds']:g}s")
    return StatsReport(metrics=metrics, details=data, errors=errors, summary=", ".join(parts))


def bloat(conn: Any, params: Any) -> StatsReport:
    details: dict[str, Any] = {}
    errors: list[str] = []
    for name, fn in (("tables", pg_catalog.table_bloat), ("indexes", pg_catalog.index_bloat)):
        try:
            details[name] = fn(conn, limit=params.top, min_bytes=params.min_bytes,
                               timeout_ms=params.catalog_timeout_ms)
        except Exception as exc:  # one estimate failing must not hide the other
            errors.append(f"{name}: {exc}")
            details[name] = []
    if params.exact:
        worst = sorted([("table", r["schema"], r["table"], r["bloat_percent"])
                        for r in details["tables"]]
                       + [("index", r["schema"], r["index"], r["bloat_percent"])
                          for r in details["indexes"]], key=lambda t: -t[3])[:params.exact_top]
        exact = pg_catalog.exact_bloat(conn, [(k, s, n) for k, s, n, _ in worst],
                                       budget_seconds=params.exact_budget.total_seconds(),
                                       install_extension=params.install_extension)
        details["exact"] = exact
        if "error" in exact:
            errors.append(f"exact: {exact['error']}")
    metrics: Metrics = {
        "tables_bloat_bytes": sum(r["bloat_bytes"] for r in details["tables"]),
        "indexes_bloat_bytes": sum(r["bloat_bytes"] for r in details["indexes"]),
        "worst_table_bloat_percent": max((r["bloat_percent"] for r in details["tables"]),
                                         default=0.0),
        "worst_index_bloat_percent": max((r["bloat_percent"] for r in details["indexes"]),
                                         default=0.0),
    }
    return StatsReport(metrics=metrics, details=details, errors=errors)


def index_health(conn: Any, params: Any) -> HealthReport:
    data, errors = _sections(pg_catalog.index_health(
        conn, unused_min_bytes=params.unused_min_bytes,
        sequence_percent=params.sequence_percent,
        wraparound_percent=params.wraparound_percent,
        idle_tx_seconds=params.idle_tx_seconds, timeout_ms=params.catalog_timeout_ms))
    findings: list[Finding] = []

    def rows(section: str) -> list[dict[str, Any]]:
        value = data.get(section)
        return value if isinstance(value, list) else []

    for r in rows("invalid_indexes"):
        what = ("leftover of a failed concurrent build" if r.get("leftover") else
                "being built right now" if r.get("building") else "not usable by queries")
        findings.append(Finding("invalid_index", "info" if r.get("building") else "warning",
                                f"{r['schema']}.{r['index']}", f"invalid index ({what})", r))
    for r in rows("duplicate_indexes"):
        findings.append(Finding(
            "duplicate_index", "warning", f"{r['schema']}.{r['index']}",
            f"{r['reason']} duplicate of {r['covered_by']}", r))
    for r in rows("unused_indexes"):
        days = r.get("days_since_stats_reset")
        since = (f"since statistics were reset {days} days ago" if days is not None else
                 "since statistics began (they were never reset)")
        findings.append(Finding("unused_index", "info", f"{r['schema']}.{r['index']}",
                                f"never scanned {since}", r))
    for r in rows("sequences"):
        severity = "critical" if r["percent_used"] >= 95 else "warning"
        if r.get("column") and r.get("column_type") in ("integer", "smallint"):
            remedy = (f"widen {r['column']} to bigint (ALTER TABLE … ALTER COLUMN … TYPE "
                      "bigint) in a maintenance window: it rewrites the table")
        else:
            remedy = (f"raise the limit of {r['schema']}.{r['sequence']} (ALTER SEQUENCE … AS "
                      "bigint NO MAXVALUE, if the columns it feeds are bigint) or plan a reset")
        findings.append(Finding("sequence", severity, f"{r['schema']}.{r['sequence']}",
                                f"{r['percent_used']}% of its range used",
                                {**r, "remedy": remedy}))
    wrap = data.get("wraparound")
    for r in (wrap.get("databases", []) if isinstance(wrap, dict) else []):
        if r.get("percent", 0) >= params.wraparound_percent:
            severity = "critical" if r["percent"] >= 75 else "warning"
            findings.append(Finding("wraparound", severity, r["datname"],
                                    f"transaction-ID age at {r['percent']}% of wraparound", r))
    for r in rows("idle_in_transaction"):
        findings.append(Finding("idle_in_transaction", "warning", f"pid {r['pid']}",
                                f"idle in transaction for {r['seconds']:.0f}s", r))
    return HealthReport(findings=findings, details=data, errors=errors)
