"""DuckDB maintenance: CHECKPOINT, VACUUM ANALYZE and the file's figures.

Plans are made on a read-only connection and each action opens the file read-write for itself
only, so the exclusive lock DuckDB takes for a writer is held for one statement. A file another
process holds is ``Locked`` (see ``duckdb_dump.opened``): the run is skipped, not failed.

``FORCE CHECKPOINT`` waits for running transactions from DuckDB 1.4 on; before that it aborted
them, so older versions get a plain ``CHECKPOINT`` (which fails, harmlessly, if one is running).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wellkept.connector import StatsReport
from wellkept.connectors.duckdb_dump import quote
from wellkept.records import Action, Metrics
from wellkept.units import human_bytes

#: the first version whose FORCE CHECKPOINT waits instead of aborting transactions
FORCE_WAITS_FROM = (1, 4)


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.lstrip("v").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def checkpoint_statement(version: str) -> str:
    return "FORCE CHECKPOINT" if version_tuple(version) >= FORCE_WAITS_FROM else "CHECKPOINT"


def files(path: Path) -> dict[str, int]:
    wal = Path(f"{path}.wal")
    return {"file_bytes": path.stat().st_size if path.exists() else 0,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0}


def plan_checkpoint(path: Path, version: str, params: Any) -> list[Action]:
    sizes = files(path)
    if sizes["wal_bytes"] < max(params.min_wal_bytes, 1) and not params.force:
        return []
    statement = checkpoint_statement(version)
    why = ("FORCE: waits for running transactions on this version" if statement.startswith(
        "FORCE") else "plain: FORCE CHECKPOINT would abort running transactions before 1.4")
    reason = (f"write-ahead log holds {human_bytes(sizes['wal_bytes'])} "
              f"(threshold {human_bytes(params.min_wal_bytes)}); {why}")
    return [Action(path.name, statement, reason, {**sizes, "duckdb_version": version},
                   meta={"op": "checkpoint"})]


_TABLES = """SELECT schema_name, table_name, estimated_size, column_count, index_count
FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal
  AND NOT temporary ORDER BY estimated_size DESC, schema_name, table_name"""


def plan_analyze(conn: Any, params: Any) -> list[Action]:
    found = conn.execute(_TABLES).fetchall()
    names = {f"{s}.{t}": (s, t) for s, t, *_ in found}
    chosen: list[tuple[str, str, dict[str, Any]]]
    if params.tables:
        from wellkept.errors import TaskFailed

        wanted = [n if "." in n else f"main.{n}" for n in params.tables]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise TaskFailed("not found: " + ", ".join(repr(m) for m in missing))
        chosen = [(n, "listed in `tables`", {}) for n in wanted]
    else:
        chosen = [(f"{s}.{t}", "refresh the optimizer's distinct-value statistics",
                   {"estimated_rows": rows, "columns": cols})
                  for s, t, rows, cols, _ in found[:params.max_tables]]
    return [Action(name, f"VACUUM ANALYZE {quote(names[name][0])}.{quote(names[name][1])}",
                   reason, evidence, meta={"op": "analyze"}) for name, reason, evidence in chosen]


def apply(conn: Any, path: Path, action: Action) -> Metrics:
    before = files(path)
    conn.execute(action.statement)
    if action.meta["op"] == "analyze":
        return {"tables_processed": 1}
    after = files(path)
    return {"wal_bytes_before": before["wal_bytes"], "wal_bytes_after": after["wal_bytes"],
            "bytes_freed": max(sum(before.values()) - sum(after.values()), 0)}


def stats(conn: Any, path: Path, params: Any) -> StatsReport:
    size = conn.execute("SELECT block_size, total_blocks, used_blocks, free_blocks "
                        "FROM pragma_database_size()").fetchone()
    block, total, used, free = (int(v or 0) for v in size)
    tables = conn.execute(_TABLES).fetchall()
    sizes = files(path)
    metrics: Metrics = {"size_bytes": sizes["file_bytes"], "wal_bytes": sizes["wal_bytes"],
                        "tables": len(tables), "free_bytes": free * block,
                        "free_percent": round(100.0 * free / total, 1) if total else 0.0}
    details = {"file": str(path), **sizes, "block_size": block, "total_blocks": total,
               "used_blocks": used, "free_blocks": free,
               "top_tables": [{"schema": s, "table": t, "estimated_rows": r, "columns": c,
                               "indexes": i} for s, t, r, c, i in tables[:params.top]]}
    summary = (f"{human_bytes(sizes['file_bytes'])} file, {len(tables)} tables, "
               f"{human_bytes(free * block)} free ({metrics['free_percent']:g}%), "
               f"write-ahead log {human_bytes(sizes['wal_bytes'])}")
    return StatsReport(metrics=metrics, details=details, summary=summary)
