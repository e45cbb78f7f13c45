"""``wellkept demo``: a realistic SQLite app database, a config for it, and the daily cycle.

The database looks like a small Django app: sessions (half expired), an audit log spanning a
year, customers with soft deletes, and free pages left behind by a dropped import table. The
daily cycle cleans it, vacuums, analyzes, checks integrity and backs it up. Run it twice: the
second run finds nothing left to clean.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wellkept.engine import Engine, RunBatch

SESSIONS = 100_000
AUDIT_ROWS = 80_000
CUSTOMERS = 30_000
DB_NAME = "app.sqlite3"
CONFIG_NAME = "wellkept.yml"
SCHEDULE = "daily_maintenance"

DEMO_CONFIG = """\
# Written by `wellkept demo`. Edit freely; `wellkept -c {config} check` validates it.
state: sqlite:///.wellkept/state.db
timezone: UTC

targets:
  app: {{url: "sqlite:///{db}"}}

tasks:
  app-stats: {{kind: stats, target: app, top: 5}}
  purge-sessions:
    kind: cleanup
    target: app
    table: django_session
    date_column: expire_date
    retention: 0s                 # a session is garbage once its expire_date has passed
    batch_size: 5000
  purge-audit-log:
    kind: cleanup
    target: app
    table: audit_log
    date_column: created_at
    retention: 90d
    batch_size: 5000
  purge-deleted-customers:
    kind: cleanup
    target: app
    table: customers
    soft_delete_column: deleted_at
    retention: 30d                # soft-deleted rows are kept 30 days for undo, then purged
  app-vacuum: {{kind: vacuum, target: app, min_free_percent: 10}}
  app-analyze: {{kind: analyze, target: app}}
  app-integrity: {{kind: integrity, target: app}}
  app-backup: {{kind: backup, target: app, destination: backups/}}

schedules:
  {schedule}:
    cron: "0 2 * * *"
    tasks: [app-stats, purge-sessions, purge-audit-log, purge-deleted-customers,
            app-vacuum, app-analyze, app-integrity, app-backup]
"""


@dataclass(frozen=True)
class Demo:
    folder: Path
    database: Path
    config: Path
    state: Path
    created: bool
    rows: int
    size_bytes: int


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # naive UTC text, as Django stores it


def build_demo(folder: Path, *, reset: bool = False, seed: int = 42) -> Demo:
    """Create the demo folder, database and config (the database only if missing or reset)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / DB_NAME
    created = reset or not db.exists()
    if created:
        for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            leftover.unlink(missing_ok=True)
        _fill(db, random.Random(seed), datetime.now(UTC))
    config = folder / CONFIG_NAME
    if created or not config.exists():  # keep the user's edits between runs
        config.write_text(DEMO_CONFIG.format(config=config, db=DB_NAME, schedule=SCHEDULE),
                          encoding="utf-8")
    conn = sqlite3.connect(db)
    try:
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("django_session", "audit_log", "customers"))
    finally:
        conn.close()
    return Demo(folder=folder, database=db, config=config,
                state=folder / ".wellkept" / "state.db", created=created, rows=rows,
                size_bytes=db.stat().st_size)


def _fill(db: Path, rng: random.Random, now: datetime) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.executescript("""
            CREATE TABLE django_session (session_key VARCHAR(40) PRIMARY KEY,
                session_data TEXT NOT NULL, expire_date DATETIME NOT NULL);
            CREATE INDEX django_session_expire_date ON django_session (expire_date);
            CREATE TABLE audit_log (id INTEGER PRIMARY KEY, actor TEXT NOT NULL,
                action TEXT NOT NULL, payload TEXT, created_at DATETIME NOT NULL);
            CREATE INDEX audit_log_created_at ON audit_log (created_at);
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                email TEXT NOT NULL, deleted_at DATETIME);
            CREATE INDEX customers_deleted_at ON customers (deleted_at);
            CREATE TABLE import_staging (id INTEGER PRIMARY KEY, blob TEXT);
        """)
        with conn:
            conn.executemany("INSERT INTO django_session VALUES (?, ?, ?)", (
                (f"{i:08x}{rng.getrandbits(96):024x}", "e30:" + "x" * rng.randint(60, 200),
                 # half expired up to 60 days ago, half expiring within the next 14 days
                 _ts(now - timedelta(seconds=rng.randint(60, 60 * 86400)) if i % 2 else
                     now + timedelta(seconds=rng.randint(3600, 14 * 86400))))
                for i in range(SESSIONS)))
            actions = ("login", "logout", "update", "delete", "export")
            conn.executemany(
                "INSERT INTO audit_log (actor, action, payload, created_at) VALUES (?, ?, ?, ?)",
                ((f"user{rng.randint(1, 500)}", rng.choice(actions), '{"ip": "127.0.0.1"}',
                  _ts(now - timedelta(seconds=rng.randint(0, 365 * 86400))))
                 for _ in range(AUDIT_ROWS)))
            conn.executemany(
                "INSERT INTO customers (name, email, deleted_at) VALUES (?, ?, ?)",
                ((f"Customer {i}", f"c{i}@example.com",
                  _ts(now - timedelta(days=rng.randint(1, 120))) if i % 5 == 0 else None)
                 for i in range(CUSTOMERS)))
            conn.executemany("INSERT INTO import_staging (blob) VALUES (?)",
                             (("y" * 1000,) for _ in range(5000)))
        # a finished import leaves its pages on the free list until a VACUUM
        conn.execute("DROP TABLE import_staging")
        conn.commit()
    finally:
        conn.close()


def run_demo(demo: Demo) -> RunBatch:
    """Run the demo's daily schedule now, through the normal engine (so it is recorded)."""
    from wellkept.config import load_config

    engine = Engine(load_config(demo.config))
    return engine.run(engine.resolve(schedule=SCHEDULE))
