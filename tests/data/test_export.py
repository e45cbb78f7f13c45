"""export against the real services: the TradeNote CSV from PostgreSQL (seed 003), JSON lines
from MariaDB, Parquet from SQLite; read-only queries, dry runs that measure exactly, retention."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pymysql

from tests.files.peers import wk

TRADENOTE = """
          tradenote:
            kind: export
            target: trading
            query: >
              SELECT account, executed_at, side, symbol, quantity, price, commission, note
              FROM trades WHERE executed_at >= TIMESTAMPTZ '2026-11-30 00:00+00' ORDER BY id
            path: "exports/tradenote-{now:%Y%m%d}.csv"
            keep_days: 30d
            columns:
              - {name: Account, from: account}
              - {name: T/D, from: executed_at, date_format: "%m/%d/%Y"}
              - {name: S/D, from: executed_at, date_format: "%m/%d/%Y"}
              - {name: Currency, value: USD}
              - {name: Type, value: "0"}
              - {name: Side, from: side, map: {buy: B, sell: S, short: SS}}
              - {name: Symbol, from: symbol}
              - {name: Qty, from: quantity}
              - {name: Price, from: price, decimals: 2}
              - {name: Exec Time, from: executed_at, date_format: "%H:%M:%S"}
              - {name: Comm, from: commission, decimals: 2}
              - {name: Note, from: note}
"""


def pg_trades(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE trades (id serial PRIMARY KEY, account text,
                        executed_at timestamptz, side text, symbol text, quantity int,
                        price numeric(12,4), commission numeric(8,4), note text)""")
        conn.execute("""INSERT INTO trades (account, executed_at, side, symbol, quantity, price,
                        commission, note) VALUES
            ('U123', '2026-11-29 15:00:00+00', 'buy', 'OLD', 1, 1, 0, 'before the window'),
            ('U123', '2026-11-30 14:31:05+00', 'buy', 'AAPL', 100, 189.125, 1.0, 'open'),
            ('U123', '2026-11-30 20:59:59+00', 'sell', 'AAPL', 100, 190.555, 1.0,
             'close, with "quotes"'),
            ('U123', '2026-12-01 09:30:00+00', 'short', 'TSLA', 5, 250, 0.5, NULL)""")


def test_tradenote_csv_from_postgresql(postgres_db: str, tmp_path: Path,
                                       write_config: Callable[[str], Path]) -> None:
    pg_trades(postgres_db)
    exports = tmp_path / "exports"
    exports.mkdir()
    old = exports / "tradenote-20261001.csv"
    old.write_text("old export")
    os.utime(old, (time.time() - 60 * 86400,) * 2)
    os.symlink("/etc/hostname", exports / "tradenote-20261002.csv")
    os.utime(exports / "tradenote-20261002.csv", (time.time() - 60 * 86400,) * 2,
             follow_symlinks=False)
    cfg = write_config(f"""
        timezone: America/New_York
        targets:
          trading: {{url: "{postgres_db}"}}
        tasks:
        {TRADENOTE}
        """)
    preview = wk(cfg, "tradenote", "--dry-run")
    assert preview["status"] == "completed", preview
    written = list(exports.glob("tradenote-2*.csv"))
    assert len(written) == 2 and old.exists()  # nothing new, nothing pruned
    assert [Path(r["path"]).name for r in preview["details"]["retention"]] == [old.name]
    result = wk(cfg, "tradenote")
    assert result["status"] == "completed", result
    path = Path(result["details"]["path"])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert result["metrics"]["rows_matched"] == 3
    assert result["metrics"]["bytes_written"] == preview["details"]["bytes"] == \
        path.stat().st_size
    assert not old.exists() and os.path.islink(exports / "tradenote-20261002.csv")
    assert result["metrics"]["files_deleted"] == 1
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["Account", "T/D", "S/D", "Currency", "Type", "Side", "Symbol", "Qty",
                       "Price", "Exec Time", "Comm", "Note"]
    assert rows[1] == ["U123", "11/30/2026", "11/30/2026", "USD", "0", "B", "AAPL", "100",
                       "189.12", "09:31:05", "1.00", "open"]
    assert rows[2][5:] == ["S", "AAPL", "100", "190.56", "15:59:59", "1.00",
                           'close, with "quotes"']
    assert rows[3][1] == "12/01/2026" and rows[3][5] == "SS" and rows[3][-1] == ""


def test_queries_run_read_only(postgres_db: str, mysql_db: str, tmp_path: Path,
                               write_config: Callable[[str], Path]) -> None:
    pg_trades(postgres_db)
    conn = pymysql.connect(host="127.0.0.1", user="root", database=mysql_db.rsplit("/", 1)[1],
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO t VALUES (1, 10)")
    sqlite_path = tmp_path / "app.db"
    lite = sqlite3.connect(sqlite_path)
    lite.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INT)")
    lite.execute("INSERT INTO t VALUES (1, 10)")
    lite.commit()
    lite.close()
    cfg = write_config(f"""
        targets:
          pg: {{url: "{postgres_db}"}}
          my: {{url: "{mysql_db}"}}
          lite: {{url: "sqlite:///app.db"}}
        tasks:
          pg-write: {{kind: export, target: pg, path: out/pg.csv,
                      query: "SELECT nextval('trades_id_seq'), pg_advisory_lock(1)"}}
          my-write: {{kind: export, target: my, path: out/my.csv,
                      query: "INSERT INTO t VALUES (2, 20)"}}
          lite-write: {{kind: export, target: lite, path: out/lite.csv,
                        query: "UPDATE t SET v = 0 RETURNING id"}}
        """)
    for name, text in (("pg-write", "read-only transaction"), ("my-write", "READ ONLY"),
                       ("lite-write", "readonly")):
        result = wk(cfg, name)
        assert result["status"] == "failed", result
        assert text.lower() in result["errors"][0].lower(), result["errors"]
    with psycopg.connect(postgres_db) as pg:  # the sequence did not move
        assert pg.execute("SELECT last_value, is_called FROM trades_id_seq").fetchone() == (
            4, True)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (1,)
    conn.close()
    assert sqlite3.connect(sqlite_path).execute("SELECT v FROM t").fetchone() == (10,)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_jsonl_gz_from_mariadb_in_batches(mysql_db: str, tmp_path: Path,
                                          write_config: Callable[[str], Path]) -> None:
    conn = pymysql.connect(host="127.0.0.1", user="root", database=mysql_db.rsplit("/", 1)[1],
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE fills (id INT PRIMARY KEY, px DECIMAL(10,4), at DATETIME)")
        cur.executemany("INSERT INTO fills VALUES (%s, %s, %s)",
                        [(i, f"{i}.1250", "2026-11-30 10:00:00") for i in range(1, 2501)])
    conn.close()
    cfg = write_config(f"""
        targets:
          shop: {{url: "{mysql_db}"}}
        tasks:
          fills: {{kind: export, target: shop, path: "out/fills-{{date}}.jsonl.gz",
                   query: "SELECT id, px, at FROM fills ORDER BY id", batch_size: 300,
                   decimals: 2, datetime_format: "%Y-%m-%dT%H:%M:%S"}}
        """)
    preview = wk(cfg, "fills", "--dry-run")
    result = wk(cfg, "fills")
    assert result["status"] == "completed", result
    path = Path(result["details"]["path"])
    assert preview["details"]["bytes"] == path.stat().st_size  # gzip without a timestamp
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert len(lines) == 2500
    assert json.loads(lines[0]) == {"id": 1, "px": 1.12, "at": "2026-11-30T10:00:00"}


def test_parquet_from_sqlite(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    lite = sqlite3.connect(tmp_path / "app.db")
    lite.execute("CREATE TABLE positions (symbol TEXT, qty INT, avg REAL)")
    lite.executemany("INSERT INTO positions VALUES (?, ?, ?)",
                     [("AAPL", 10, 189.5), ("MSFT", 5, 410.25), ("NVDA", 0, None)])
    lite.commit()
    lite.close()
    cfg = write_config("""
        targets:
          app: {url: "sqlite:///app.db"}
        tasks:
          snap: {kind: export, target: app, path: "out/positions-{date}.parquet",
                 query: "SELECT symbol, qty, avg FROM positions ORDER BY symbol",
                 columns: [{name: sym, from: symbol}, {name: qty}, {name: avg_price, from: avg}]}
        """)
    result = wk(cfg, "snap")
    assert result["status"] == "completed", result
    rows = duckdb.connect().execute(
        f"SELECT * FROM read_parquet('{result['details']['path']}')").fetchall()
    assert rows == [("AAPL", 10, 189.5), ("MSFT", 5, 410.25), ("NVDA", 0, None)]
    again = wk(cfg, "snap")
    assert again["status"] == "failed" and "already exists" in again["message"]


def test_duckdb_export_and_a_write_refused(tmp_path: Path,
                                           write_config: Callable[[str], Path]) -> None:
    con = duckdb.connect(str(tmp_path / "analytics.duckdb"))
    con.execute("CREATE TABLE bars AS SELECT range AS i, range * 1.5 AS px FROM range(12000)")
    con.close()
    cfg = write_config("""
        targets:
          olap: {url: "duckdb:///analytics.duckdb"}
        tasks:
          bars: {kind: export, target: olap, path: "out/bars.csv.zst", batch_size: 1000,
                 query: "SELECT i, px FROM bars ORDER BY i", decimals: 1}
          write: {kind: export, target: olap, path: "out/w.csv",
                  query: "CREATE TABLE evil AS SELECT 1"}
        """)
    result = wk(cfg, "bars")
    assert result["status"] == "completed", result
    import zstandard

    text = zstandard.ZstdDecompressor().decompressobj().decompress(
        Path(result["details"]["path"]).read_bytes()).decode()
    lines = text.splitlines()
    assert lines[0] == "i,px" and lines[3] == "2,3.0" and len(lines) == 12001
    refused = wk(cfg, "write")
    assert refused["status"] == "failed" and "read-only" in refused["errors"][0].lower()
    check = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    assert check.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_name = 'evil'").fetchone() == (0,)
    check.close()


def test_jsonl_decimals_are_exact_and_lettered_dates_are_pruned(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """Decimals reach JSON lines as the numbers they are, never through a float; a name
    whose date has letters in it ({now:%d%b%Y}) is still recognised by the retention, and a
    name the template could not have made is never touched."""
    con = duckdb.connect(str(tmp_path / "books.duckdb"))
    con.execute("CREATE TABLE pnl AS SELECT 12345678901234567.89::DECIMAL(38, 2) AS big, "
                "1.505::DECIMAL(10, 3) AS px, 7 AS n")
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    for name in ("pnl-01Nov2026-120000.jsonl", "pnl-02Nov2026-120000.jsonl", "pnl-notes.jsonl"):
        (out / name).write_text("{}\n")
        os.utime(out / name, (time.time() - 40 * 86400,) * 2)
    cfg = write_config("""
        targets:
          books: {url: "duckdb:///books.duckdb"}
        tasks:
          pnl: {kind: export, target: books, path: "out/pnl-{now:%d%b%Y}-{time}.jsonl",
                query: "SELECT big, px, n FROM pnl", decimals: 2, keep_last: 2}
        """)
    result = wk(cfg, "pnl")
    assert result["status"] == "completed", result
    line = Path(result["details"]["path"]).read_text().splitlines()[0]
    assert line == '{"big": 12345678901234567.89, "px": 1.50, "n": 7}'
    assert json.loads(line, parse_float=Decimal) == {
        "big": Decimal("12345678901234567.89"), "px": Decimal("1.50"), "n": 7}
    assert [Path(r["path"]).name for r in result["details"]["retention"]] == [
        "pnl-01Nov2026-120000.jsonl"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [Path(result["details"]["path"]).name, "pnl-02Nov2026-120000.jsonl", "pnl-notes.jsonl"])
