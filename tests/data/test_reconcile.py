"""reconcile against the real services: seed 003's positions in Redis against the positions
table in PostgreSQL, open orders in a Redis set against MariaDB, with planted differences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql

from tests.files.peers import wk
from tests.helpers import run_cli

POSITIONS = {"AAPL": (100, "189.50"), "MSFT": (50, "410.00"), "NVDA": (10, "120.00"),
             "TSLA": (5, "250.00"), "AMZN": (7, "180.00")}


def setup_positions(postgres_db: str, name: str, client: Any) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE positions (account text, symbol text, quantity int, "
                     "avg_price numeric(12,4), PRIMARY KEY (account, symbol))")
        for symbol, (qty, price) in POSITIONS.items():
            conn.execute("INSERT INTO positions VALUES ('U1', %s, %s, %s)", (symbol, qty, price))
        conn.execute("INSERT INTO positions VALUES ('U1', 'ONLYPG', 1, 1)")
    redis_side = dict(POSITIONS)
    redis_side["MSFT"] = (55, "410.00")        # quantity drifted
    redis_side["NVDA"] = (10, "120.004")       # within the price tolerance
    redis_side["TSLA"] = (5, "251.00")         # outside it
    redis_side["ONLYREDIS"] = (3, "9.99")
    for symbol, (qty, price) in redis_side.items():
        client.hset(f"{name}:positions:U1:{symbol}", mapping={"qty": qty, "avg_price": price,
                                                              "updated": "now"})
    client.set(f"{name}:positions:U1:NOTAHASH", "x")  # SCAN TYPE hash leaves it out


def config(write_config: Callable[[str], Path], pg: str, rd: str, name: str,
           extra: str = "") -> Path:
    return write_config(f"""
        targets:
          trading: {{url: "{pg}"}}
          cache: {{url: "{rd}"}}
        tasks:
          positions:
            kind: reconcile
            left: {{target: trading,
                    query: "SELECT account, symbol, quantity, avg_price FROM positions"}}
            right: {{target: cache, redis: hash, pattern: "{name}:positions:*",
                     key_from_name: "{name}:positions:{{account}}:{{symbol}}",
                     rename: {{qty: quantity}}}}
            key: [account, symbol]
            fields: [quantity, avg_price]
            tolerance: {{avg_price: 0.01}}
            {extra}
        """)


def test_positions_in_redis_against_postgresql(postgres_db: str, redis_url: str,
                                               redis_prefix: tuple[str, Any], tmp_path: Path,
                                               write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    setup_positions(postgres_db, name, client)
    result = wk(config(write_config, postgres_db, redis_url, name), "positions")
    assert result["status"] == "failed"
    m = result["metrics"]
    assert (m["rows_left"], m["rows_right"], m["keys_matched"]) == (6, 6, 5)
    assert (m["missing_left"], m["missing_right"], m["mismatched"]) == (1, 1, 2)
    d = result["details"]
    assert d["missing_right"][0]["key"] == {"account": "U1", "symbol": "ONLYPG"}
    assert d["missing_left"][0]["key"] == {"account": "U1", "symbol": "ONLYREDIS"}
    diffs = {row["key"]["symbol"]: row["differences"] for row in d["mismatched"]}
    assert diffs["MSFT"] == [{"field": "quantity", "left": 50, "right": "55"}]
    assert diffs["TSLA"] == [{"field": "avg_price", "left": "250.0000", "right": "251.00"}]
    assert "NVDA" not in diffs and "AAPL" not in diffs
    assert d["mismatched_fields"] == {"avg_price": 1, "quantity": 1}
    assert "1 missing from cache; 1 missing from trading; 2 mismatched" in result["message"]
    # repaired, the two sides agree
    client.hset(f"{name}:positions:U1:MSFT", "qty", 50)
    client.hset(f"{name}:positions:U1:TSLA", "avg_price", "250")
    client.unlink(f"{name}:positions:U1:ONLYREDIS")
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("DELETE FROM positions WHERE symbol = 'ONLYPG'")
    agreed = wk(config(write_config, postgres_db, redis_url, name), "positions")
    assert agreed["status"] == "completed", agreed
    assert agreed["message"].startswith("agree: 5 records match")


def test_differences_are_capped_with_complete_counts(postgres_db: str, redis_url: str,
                                                     redis_prefix: tuple[str, Any],
                                                     write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE positions (account text, symbol text, quantity int, "
                     "avg_price numeric)")
        conn.execute("INSERT INTO positions SELECT 'U1', 'S' || g, g, 1 "
                     "FROM generate_series(1, 3000) g")
    pipe = client.pipeline()
    for g in range(1, 3000, 2):  # every other one
        pipe.hset(f"{name}:positions:U1:S{g}", mapping={"qty": g, "avg_price": 1})
    pipe.execute()
    result = wk(config(write_config, postgres_db, redis_url, name,
                       "max_differences: 5\n            batch_size: 200"), "positions")
    assert result["metrics"]["missing_right"] == 1500
    assert len(result["details"]["missing_right"]) == 5
    assert result["metrics"]["keys_matched"] == 1500 and result["metrics"]["mismatched"] == 0


def test_open_orders_set_against_mariadb(mysql_db: str, redis_url: str,
                                         redis_prefix: tuple[str, Any],
                                         write_config: Callable[[str], Path]) -> None:
    name, client = redis_prefix
    conn = pymysql.connect(host="127.0.0.1", user="root", database=mysql_db.rsplit("/", 1)[1],
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10))")
        cur.executemany("INSERT INTO orders VALUES (%s, %s)",
                        [(i, "open" if i <= 8 else "filled") for i in range(1, 13)])
    conn.close()
    client.sadd(f"{name}:orders:open", *[str(i) for i in range(1, 8)], "99")
    cfg = write_config(f"""
        targets:
          shop: {{url: "{mysql_db}"}}
          cache: {{url: "{redis_url}"}}
        tasks:
          stuck-orders:
            kind: reconcile
            left: {{target: shop, query: "SELECT id FROM orders WHERE status = 'open'"}}
            right: {{target: cache, redis: set, pattern: "{name}:orders:open", member_as: id}}
            key: [id]
        """)
    result = wk(cfg, "stuck-orders")
    assert result["status"] == "failed"
    assert [r["key"] for r in result["details"]["missing_right"]] == ["8"]
    assert [r["key"] for r in result["details"]["missing_left"]] == ["99"]


def test_sides_name_known_targets(write_config: Callable[[str], Path]) -> None:
    cfg = write_config("""
        tasks:
          r: {kind: reconcile, key: [id], left: {target: nowhere, query: "SELECT 1"},
              right: {target: host, redis: hash, pattern: "*"}}
        """)
    proc = run_cli("-c", str(cfg), "check")
    assert proc.returncode == 2
    assert "tasks.r.right.pattern: wildcards alone" in proc.stderr or \
        "tasks.r.right: pattern: wildcards alone" in proc.stderr
    cfg = write_config("""
        tasks:
          r: {kind: reconcile, key: [id], left: {target: nowhere, query: "SELECT 1"},
              right: {target: host, query: "SELECT 1"}}
        """, name="two.yml")
    proc = run_cli("-c", str(cfg), "check")
    assert "tasks.r.left.target: unknown target 'nowhere'; defined targets: host" in proc.stderr
