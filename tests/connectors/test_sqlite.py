"""The SQLite connector on real files: ping, identity, URLs, the catalog and time formats."""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_app_db, sql
from wellkept.config import TargetSettings, load_config
from wellkept.connector import PurgeRule
from wellkept.connectors.sqlite import SQLiteConnector
from wellkept.connectors.sqlite_catalog import Catalog, TimeFormat, quote
from wellkept.errors import ConnectionFailed, TaskFailed, Unavailable

NOW = datetime.now(UTC)
RETENTION = timedelta(days=30)


# --- builders -----------------------------------------------------------------------------------


@pytest.fixture
def connect() -> Iterator[Callable[..., SQLiteConnector]]:
    """Build connectors on a file; every one is closed after the test."""
    made: list[SQLiteConnector] = []

    def build(path: Path, lock_timeout: str = "5s") -> SQLiteConnector:
        settings = TargetSettings.model_validate(
            {"url": f"sqlite:///{path}", "lock_timeout": lock_timeout})
        made.append(SQLiteConnector("app", settings))
        return made[-1]

    yield build
    for conn in made:
        conn.close()


def script(path: Path, text: str) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(text)
    conn.close()
    return path


def fill(path: Path, table: str, column: str, values: list[Any]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(f"INSERT INTO {quote(table)} ({quote(column)}) VALUES (?)",
                         [(v,) for v in values])
    conn.close()


def purge_all(connector: SQLiteConnector, table: str, column: str, limit: int = 7) -> int:
    """Drive the connector's batches to the end, as the cleanup task does; rows deleted."""
    rule = PurgeRule(table=table, column=column, cutoff=NOW - RETENTION, retention=RETENTION)
    deleted, last = 0, None
    while True:
        batch = connector.purge_batch(rule, last, limit)
        if batch.last_key is None:
            return deleted
        deleted, last = deleted + batch.deleted, batch.last_key


# --- ping, identity, URLs -----------------------------------------------------------------------


def test_ping_reports_sqlite_version_and_path(tmp_path: Path, connect: Callable) -> None:
    db = make_app_db(tmp_path / "app.db", old=5, fresh=5)
    ping = connect(db).ping()
    assert ping.version == f"SQLite {sqlite3.sqlite_version}"
    assert ping.details == {"path": str(db)}
    assert ping.latency_ms >= 0
    assert sql(db, "SELECT count(*) FROM events") == [(10,)]


def test_ping_of_a_missing_file_names_it_and_creates_nothing(tmp_path: Path,
                                                             connect: Callable) -> None:
    missing = tmp_path / "nope" / "gone.db"
    with pytest.raises(ConnectionFailed, match=re.escape(str(missing))):
        connect(missing).ping()
    assert not missing.exists()
    assert not missing.parent.exists()


def test_ping_of_a_file_that_is_not_a_database_fails_and_leaves_it(tmp_path: Path,
                                                                  connect: Callable) -> None:
    notdb = tmp_path / "notes.db"
    notdb.write_bytes(b"this is not an SQLite database\n" * 200)
    before = notdb.read_bytes()
    with pytest.raises(TaskFailed, match=r"notes\.db"):
        connect(notdb).ping()
    assert notdb.read_bytes() == before


def test_ping_of_an_exclusively_locked_file_is_unavailable(tmp_path: Path,
                                                          connect: Callable) -> None:
    db = make_app_db(tmp_path / "app.db", old=5, fresh=5)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Unavailable, match=r"app\.db is busy .*waited 1s"):
            connect(db, lock_timeout="1s").ping()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sql(db, "SELECT count(*) FROM events") == [(10,)]


def test_identity_is_the_real_path_so_a_symlink_is_the_same_database(
        tmp_path: Path, connect: Callable) -> None:
    db = make_app_db(tmp_path / "app.db", old=1, fresh=1)
    link = tmp_path / "alias.db"
    link.symlink_to(db)
    assert connect(db).identity() == f"sqlite:{os.path.realpath(db)}"
    assert connect(link).identity() == connect(db).identity()
    other = make_app_db(tmp_path / "other.db", old=1, fresh=1)
    assert connect(other).identity() != connect(db).identity()


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///app.db", "sqlite:///{base}/app.db"),
    ("sqlite:///data/../app.db", "sqlite:///{base}/app.db"),
    ("sqlite:////var/lib/app.db", "sqlite:////var/lib/app.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
])
def test_resolve_url(tmp_path: Path, url: str, expected: str) -> None:
    base = tmp_path.resolve()
    assert SQLiteConnector.resolve_url(url, base) == expected.format(base=base)


def test_relative_url_in_config_is_relative_to_the_config_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connect: Callable) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    db = make_app_db(folder / "app.db", old=3, fresh=2)
    cfg = folder / "wellkept.yml"
    cfg.write_text("targets:\n  app:\n    url: sqlite:///app.db\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    settings = load_config(cfg)
    conn = SQLiteConnector("app", settings.targets["app"])
    try:
        assert conn.path == db.resolve()
        assert conn.ping().details["path"] == str(db.resolve())
    finally:
        conn.close()


# --- catalog and identifiers --------------------------------------------------------------------


def test_quote_doubles_embedded_quotes_and_round_trips(tmp_path: Path) -> None:
    assert quote('we"ird; table') == '"we""ird; table"'
    db = tmp_path / "q.db"
    name = 'x"; DROP TABLE t; --'
    script(db, f"CREATE TABLE t (a); CREATE TABLE {quote(name)} (a);")
    assert sorted(r[0] for r in sql(db, "SELECT name FROM sqlite_master")) == sorted([name, "t"])


def test_catalog_lists_user_tables_and_indexes_only(tmp_path: Path) -> None:
    db = script(tmp_path / "c.db", """
        CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE);
        CREATE TABLE a (x); CREATE INDEX a_x ON a (x);
        INSERT INTO a VALUES (1); ANALYZE;""")
    conn = sqlite3.connect(db)
    cat = Catalog(conn)
    assert cat.tables() == ["a", "b"]  # no sqlite_sequence, no sqlite_stat1
    assert sorted(cat.indexes()) == [("a_x", "a"), ("sqlite_autoindex_b_1", "b")]
    assert cat.count("a") == 1
    assert cat.analyzed_rows() == {"a": 1}
    conn.close()


def test_find_table_and_column_are_case_insensitive_but_return_real_names(tmp_path: Path) -> None:
    db = script(tmp_path / "c.db", "CREATE TABLE Events (ID INTEGER PRIMARY KEY, Created_At);")
    fill(db, "Events", "Created_At", ["2001-01-01 00:00:00"])
    plan = Catalog(sqlite3.connect(db)).purge_plan("events", "created_at")
    assert (plan.table, plan.column, plan.key) == ('"Events"', '"Created_At"', "rowid")


def test_unknown_table_lists_the_real_tables(tmp_path: Path) -> None:
    db = script(tmp_path / "c.db", "CREATE TABLE events (t); CREATE TABLE users (t);")
    with pytest.raises(TaskFailed, match=r"'evnts' does not exist; tables: events, users"):
        Catalog(sqlite3.connect(db)).purge_plan("evnts", "t")


def test_unknown_column_lists_the_real_columns(tmp_path: Path) -> None:
    db = script(tmp_path / "c.db", "CREATE TABLE events (id INTEGER PRIMARY KEY, created_at);")
    with pytest.raises(TaskFailed, match=r"no column 'created_at\" OR 1=1 --'; "
                                         r"columns: id, created_at"):
        Catalog(sqlite3.connect(db)).purge_plan("events", 'created_at" OR 1=1 --')


@pytest.mark.parametrize(("ddl", "key", "label"), [
    ("CREATE TABLE t (id INTEGER PRIMARY KEY, ts)", "rowid", "rowid"),
    ("CREATE TABLE t (rowid TEXT, ts)", "_rowid_", "rowid"),
    ("CREATE TABLE t (rowid, _rowid_, ts)", "oid", "rowid"),
    ("CREATE TABLE t (rowid, _rowid_, oid, id INTEGER PRIMARY KEY, ts)", '"id"', "id"),
    ("CREATE TABLE t (tok TEXT PRIMARY KEY, ts) WITHOUT ROWID", '"tok"', "tok"),
    ('CREATE TABLE t ("to""k" TEXT PRIMARY KEY, ts) without   rowid', '"to""k"', 'to"k'),
])
def test_batch_key_avoids_shadowed_rowid_aliases(tmp_path: Path, ddl: str, key: str,
                                                 label: str) -> None:
    db = script(tmp_path / "k.db", ddl + ";")
    plan = Catalog(sqlite3.connect(db)).purge_plan("t", "ts")
    assert (plan.key, plan.key_label) == (key, label)


@pytest.mark.parametrize("ddl", [
    "CREATE TABLE t (a TEXT, b TEXT, ts, PRIMARY KEY (a, b)) WITHOUT ROWID",
    "CREATE TABLE t (rowid, _rowid_, oid, ts)",
])
def test_tables_without_a_usable_key_are_refused(tmp_path: Path, ddl: str) -> None:
    db = script(tmp_path / "k.db", ddl + ";")
    with pytest.raises(TaskFailed, match=r"'t' has no usable key .* refusing to clean it"):
        Catalog(sqlite3.connect(db)).purge_plan("t", "ts")


def test_ordinary_rowid_table_mentioning_without_rowid_in_a_default_is_cleanable(
        tmp_path: Path, connect: Callable) -> None:
    """The WITHOUT ROWID test looks at the whole DDL text, so a string default fools it."""
    db = script(tmp_path / "k.db",
                "CREATE TABLE notes (body TEXT DEFAULT 'kept without rowid', ts TEXT);")
    fill(db, "notes", "ts", [(NOW - timedelta(days=100)).strftime("%Y-%m-%d %H:%M:%S")] * 3)
    fill(db, "notes", "ts", [(NOW - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")] * 2)
    assert purge_all(connect(db), "notes", "ts") == 3
    assert sql(db, "SELECT count(*) FROM notes") == [(2,)]


# --- time formats -------------------------------------------------------------------------------

FORMATS: dict[str, tuple[str, Callable[[datetime], Any], TimeFormat, str]] = {
    # name: (declared type, how a moment is stored, expected format, cutoff pattern)
    "text-space": ("DATETIME", lambda d: d.strftime("%Y-%m-%d %H:%M:%S"), TimeFormat(),
                   r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
    "text-T": ("TEXT", lambda d: d.strftime("%Y-%m-%dT%H:%M:%S"), TimeFormat(separator="T"),
               r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"),
    "date-only": ("DATE", lambda d: d.strftime("%Y-%m-%d"), TimeFormat(date_only=True),
                  r"\d{4}-\d\d-\d\d"),
    "epoch-s": ("INTEGER", lambda d: int(d.timestamp()), TimeFormat(kind="epoch"), ""),
    "epoch-ms": ("INTEGER", lambda d: int(d.timestamp() * 1000),
                 TimeFormat(kind="epoch", scale=1000), ""),
    "epoch-real": ("REAL", lambda d: d.timestamp(), TimeFormat(kind="epoch"), ""),
}


def make_timed_table(path: Path, declared: str, store: Callable[[datetime], Any],
                     old: int = 23, fresh: int = 11, nulls: int = 4) -> list[Any]:
    """`log` with `old` rows 100+ days old, `fresh` ones 1 day old, some NULLs; old values."""
    script(path, f"CREATE TABLE log (id INTEGER PRIMARY KEY, at {declared}, tag TEXT);"
                 f"CREATE INDEX log_at ON log (at);")
    old_values = [store(NOW - timedelta(days=100 + i)) for i in range(old)]
    fresh_values = [store(NOW - timedelta(days=1, hours=i)) for i in range(fresh)]
    fill(path, "log", "at", [None] * nulls + fresh_values + old_values)
    return old_values


@pytest.mark.parametrize("name", list(FORMATS))
def test_time_format_is_detected_and_the_cutoff_matches_it(tmp_path: Path, name: str,
                                                           connect: Callable) -> None:
    declared, store, expected, pattern = FORMATS[name]
    db = tmp_path / f"{name}.db"
    old_values = make_timed_table(db, declared, store)
    plan = Catalog(sqlite3.connect(db)).purge_plan("log", "at")
    assert plan.time_format == expected
    connector = connect(db)
    est = connector.purge_estimate(PurgeRule("log", "at", NOW - RETENTION, RETENTION))
    if expected.kind == "epoch":
        assert est.cutoff == pytest.approx((NOW - RETENTION).timestamp() * expected.scale)
    else:
        assert re.fullmatch(pattern, est.cutoff)
        assert est.cutoff == store(NOW - RETENTION)
    assert est.rows == len(old_values)
    assert (est.oldest, est.newest) == (min(old_values), max(old_values))
    assert est.rows == sql(db, "SELECT count(*) FROM log WHERE at < ?", est.cutoff)[0][0]
    assert purge_all(connector, "log", "at") == len(old_values)
    connector.close()
    assert sql(db, "SELECT count(*) FROM log WHERE at IS NULL") == [(4,)]
    assert sql(db, "SELECT count(*) FROM log WHERE at IS NOT NULL") == [(11,)]
    assert sql(db, "SELECT count(*) FROM log WHERE at < ?", est.cutoff) == [(0,)]


def test_empty_or_all_null_column_matches_nothing(tmp_path: Path, connect: Callable) -> None:
    db = script(tmp_path / "e.db", "CREATE TABLE log (id INTEGER PRIMARY KEY, at TEXT);")
    fill(db, "log", "at", [None, None])
    connector = connect(db)
    est = connector.purge_estimate(PurgeRule("log", "at", NOW - RETENTION, RETENTION))
    assert (est.rows, est.oldest, est.newest) == (0, None, None)
    assert purge_all(connector, "log", "at") == 0
    assert sql(db, "SELECT count(*) FROM log") == [(2,)]


def test_batches_walk_a_text_primary_key_and_never_touch_other_rows(
        tmp_path: Path, connect: Callable) -> None:
    db = script(tmp_path / "s.db",
                "CREATE TABLE sessions (token TEXT PRIMARY KEY, expires TEXT) WITHOUT ROWID;")
    rows = [(uuid.uuid4().hex, (NOW - timedelta(days=90 if i % 3 else 2, minutes=i))
             .strftime("%Y-%m-%d %H:%M:%S")) for i in range(200)]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO sessions VALUES (?, ?)", rows)
    conn.close()
    keep = sorted(t for t, e in rows if e >= (NOW - RETENTION).strftime("%Y-%m-%d %H:%M:%S"))
    assert purge_all(connect(db), "sessions", "expires", limit=9) == 200 - len(keep)
    assert [r[0] for r in sql(db, "SELECT token FROM sessions ORDER BY token")] == keep
