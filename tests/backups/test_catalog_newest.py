"""catalog.newest, which backup freshness reads after every run and health check: the same
answer as walking the whole catalog, from two index probes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from wellkept.backups import catalog
from wellkept.backups.freshness import passes
from wellkept.backups.manifest import Manifest
from wellkept.backups.verify import TIERS
from wellkept.history.store import HistoryStore
from wellkept.records import iso_z


def _manifest(backup_id: str, target: str, task: str, created: datetime) -> Manifest:
    return Manifest(id=backup_id, task=task, target=target, engine="sqlite", format="file",
                    database="app", server_version="3", tools={}, started_at=str(iso_z(created)),
                    finished_at=str(iso_z(created)), artifact=f"{backup_id}.zst", raw_bytes=1,
                    stored_bytes=1, sha256="0" * 64, compression="zstd", encrypted=False,
                    recipient="", counts={}, counts_exact=True, wellkept_version="0")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> HistoryStore:
    """A catalog of 600 backups of two targets by two tasks, some verified (to each tier,
    passed or failed), some pruned, in a shuffled order of insertion."""
    store = HistoryStore(f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'state.db'}")
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"{target}-{i:04d}", target, rng.choice(["nightly", "hourly"]),
             start + timedelta(hours=i)) for target in ("app", "shop") for i in range(300)]
    rng.shuffle(rows)
    for backup_id, target, task, created in rows:
        catalog.record(store, _manifest(backup_id, target, task, created), "local:backups")
        roll = rng.random()
        if roll < 0.3:
            catalog.mark_verified(store, backup_id, rng.choice(TIERS), rng.random() < 0.8, "")
        if rng.random() < 0.2:
            catalog.mark_pruned(store, backup_id)
    return store


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("task", [None, "nightly", "hourly", "none-such"])
@pytest.mark.parametrize("target", ["app", "shop", "none-such"])
def test_newest_matches_a_walk_of_the_whole_catalog(store: HistoryStore, tier: str,
                                                    task: str | None, target: str) -> None:
    walk = catalog.entries(store, target, task=task)
    expected = (next((e.id for e in walk if passes(e, tier)), None),
                walk[0].id if walk else None)
    verified, newest = catalog.newest(store, target, verified_to=TIERS[TIERS.index(tier):],
                                      task=task)
    assert (verified.id if verified else None, newest.id if newest else None) == expected


def test_newest_probes_the_index_and_never_scans(store: HistoryStore) -> None:
    """The statement walks the (target, created_at) index backwards and stops at its first
    match: what it costs does not grow with the catalog's history."""
    sent: list[tuple[str, object]] = []

    def keep(conn: object, cursor: object, statement: str, parameters: object,
             *args: object) -> None:
        sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", keep)
    catalog.newest(store, "app", verified_to=TIERS)
    sa.event.remove(store.engine, "before_cursor_execute", keep)
    (statement, parameters), = sent
    with store.engine.connect() as conn:
        plan = [str(row[-1]) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters)]  # type: ignore[arg-type]
    searches = [p for p in plan if "wk_backups" in p]
    assert len(searches) == 2, plan
    assert all(p.startswith("SEARCH wk_backups USING INDEX ix_wk_backups_target_created")
               for p in searches), plan
