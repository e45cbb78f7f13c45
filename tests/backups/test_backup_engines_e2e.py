"""Backup, verify and restore round trips through the real CLI for MariaDB, Redis and DuckDB,
and a backup task writing to S3 (moto on loopback); each checks the restored data itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis

from tests.backups.test_s3_storage import ACCESS_KEY, REGION, SECRET_KEY, endpoint  # noqa: F401
from tests.helpers import free_port, private_redis, run_cli


def _json(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _backup(cfg: Path, target: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run_cli("-c", str(cfg), "backup", target, "-o", "json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = _json(done)["results"][0]
    assert result["details"]["verification"]["passed"] is True, result["details"]
    return result  # type: ignore[no-any-return]


# --- MariaDB ------------------------------------------------------------------------------------

def _mysql(url: str) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    database = url.rsplit("/", 1)[1]
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=database, autocommit=True)


def _mysql_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = _mysql(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, total, note FROM orders ORDER BY id")
            orders = list(cur.fetchall())
            cur.execute("SELECT x FROM `odd ``name`` ;drop` ORDER BY x")
            odd = list(cur.fetchall())
    finally:
        conn.close()
    return {"orders": orders, "odd": odd}


def test_mariadb_backup_restore_round_trip_through_the_cli(
        mysql_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    conn = _mysql(mysql_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id bigint PRIMARY KEY, total decimal(10,2), "
                    "note text) ENGINE=InnoDB")
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)",
                        [(i, i * 1.25, f"note 'quoted' \\ {i} ;--") for i in range(1, 3001)])
        cur.execute("CREATE TABLE `odd ``name`` ;drop` (x int)")
        cur.execute("INSERT INTO `odd ``name`` ;drop` VALUES (1), (2)")
    conn.close()
    cfg = write_config(f"""
        targets:
          shop: {{url: "{mysql_db}"}}
        tasks:
          shop-backup: {{kind: backup, target: shop, destination: backups/, verify: restore,
                        smoke_queries: ["SELECT count(*) FROM orders"]}}
        """)
    # a ~/.my.cnf with wrong credentials must not be read: the URL is the whole truth
    home = tmp_path / "home"
    home.mkdir()
    (home / ".my.cnf").write_text("[client]\nuser=nobody\npassword=wrong\nport=1\n")
    result = _backup(cfg, "shop", env={"HOME": str(home)})
    assert result["details"]["verification"]["smoke"] == {"SELECT count(*) FROM orders": 3000}
    backup_id = result["details"]["backup_id"]

    into = f"{mysql_db}_copy"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                            autocommit=True)
    try:
        # --create makes the database first; into one that exists it is refused
        restored = run_cli("-c", str(cfg), "restore", backup_id, "--into", into, "--create",
                           "-o", "json", env={"HOME": str(home)})
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert _json(restored)["passed"] is True
        assert _mysql_rows(into) == _mysql_rows(mysql_db)
        refused = run_cli("-c", str(cfg), "restore", backup_id, "--into", into)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        exists = run_cli("-c", str(cfg), "restore", backup_id, "--into", into, "--create")
        assert exists.returncode == 2 and "exists already" in exists.stderr, exists.stderr
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{into.rsplit('/', 1)[1]}`")
        admin.close()


# --- Redis --------------------------------------------------------------------------------------

def test_redis_backup_restore_round_trip_through_the_cli(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    password = "pw:" + uuid.uuid4().hex
    with private_redis(tmp_path / "source", password,
                       ("--repl-diskless-sync-delay", "0")) as source, \
            private_redis(tmp_path / "dest") as dest:
        client = redis.Redis.from_url(source)
        client.set("greeting", "hello")
        client.set("expiring", "soon", ex=3600)
        client.hset("user:1", mapping={"name": "Ada", "lang": "en"})
        client.rpush("queue", "a", "b", "c")
        redis.Redis.from_url(source.replace("/0", "/3")).set("in-db-3", "three")
        cfg = write_config(f"""
            targets:
              cache: {{url: "{source}"}}
            tasks:
              cache-backup: {{kind: backup, target: cache, destination: backups/,
                              verify: restore, smoke_queries: ["GET greeting"]}}
            """)
        result = _backup(cfg, "cache")
        assert result["details"]["verification"]["smoke"] == {"GET greeting": "hello"}
        refused = run_cli("-c", str(cfg), "restore", result["details"]["backup_id"],
                          "--into", dest, "--create")
        assert refused.returncode == 2, refused.stderr
        assert "--create does not apply to redis targets" in refused.stderr
        restored = run_cli("-c", str(cfg), "restore", result["details"]["backup_id"],
                           "--into", dest, "-o", "json")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        out = redis.Redis.from_url(dest)
        assert out.get("greeting") == b"hello"
        assert out.hgetall("user:1") == {b"name": b"Ada", b"lang": b"en"}
        assert out.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
        assert 3500 < out.ttl("expiring") <= 3600
        assert redis.Redis.from_url(dest.replace("/0", "/3")).get("in-db-3") == b"three"
        # the password reached redis-cli through the environment, never its argv
        manifest = json.loads(next((tmp_path / "backups" / "cache").glob(
            "*.manifest.json")).read_text())
        assert password not in json.dumps(manifest)


# --- DuckDB -------------------------------------------------------------------------------------

def test_duckdb_backup_restore_round_trip_through_the_cli(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    import duckdb

    source = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(source)) as conn:
        conn.execute("CREATE TABLE trades AS SELECT range AS id, range * 0.5 AS price, "
                     "'sym' || (range % 7) AS symbol FROM range(20000)")
        conn.execute("CREATE SCHEMA ref")
        conn.execute("CREATE TABLE ref.symbols (name text PRIMARY KEY)")
        conn.execute("INSERT INTO ref.symbols VALUES ('sym0'), ('sym1')")
        conn.execute("CREATE VIEW cheap AS SELECT * FROM trades WHERE price < 10")
    cfg = write_config("""
        targets:
          analytics: {url: "duckdb:///analytics.duckdb"}
        tasks:
          analytics-backup: {kind: backup, target: analytics, destination: backups/,
                             verify: restore, smoke_queries: ["SELECT count(*) FROM cheap"]}
        """)
    result = _backup(cfg, "analytics")
    assert result["details"]["verification"]["smoke"] == {"SELECT count(*) FROM cheap": 20}
    into = tmp_path / "restored.duckdb"
    restored = run_cli("-c", str(cfg), "restore", result["details"]["backup_id"], "--into",
                       f"duckdb:///{into}", "-o", "json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    query = ("SELECT (SELECT sum(id * price) FROM trades), (SELECT count(*) FROM cheap), "
             "(SELECT string_agg(name, ',' ORDER BY name) FROM ref.symbols)")
    with duckdb.connect(str(source), read_only=True) as a, \
            duckdb.connect(str(into), read_only=True) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_duckdb_backup_of_a_file_held_by_a_writer_is_skipped(
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    import duckdb

    source = tmp_path / "ingest.duckdb"
    duckdb.connect(str(source)).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(source)!r})\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        cfg = write_config("""
            targets:
              ingest: {url: "duckdb:///ingest.duckdb"}
            """)
        done = run_cli("-c", str(cfg), "backup", "ingest", "-o", "json")
        result = _json(done)["results"][0]
        # held by its owner is not a failure (seed 000): the backup is skipped, naming the
        # holder, and backup_freshness reports the gap if it lasts past the RPO
        assert done.returncode == 0 and result["status"] == "skipped"
        assert str(holder.pid) in result["message"]
        assert not list((tmp_path / "backups").rglob("*.manifest.json"))
    finally:
        holder.kill()
        holder.wait()


# --- S3 -----------------------------------------------------------------------------------------

def test_backup_task_to_s3_then_verify_and_restore(
        endpoint: str, write_config: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    import boto3

    from tests.helpers import make_app_db, sql

    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           # a request that lost the destination's endpoint would go to AWS; send it to a
           # loopback port with nothing listening instead, so that it fails here and now
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    bucket = f"wk-{uuid.uuid4().hex[:12]}"
    s3 = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               region_name=REGION).client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    make_app_db(tmp_path / "app.sqlite3", old=300, fresh=200)
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///app.sqlite3"}}
        tasks:
          offsite:
            kind: backup
            target: app
            destination: "s3://{bucket}/prod?endpoint={endpoint}"
            verify: restore
            keep_last: 2
        """)
    ids = [_backup(cfg, "app", env)["details"]["backup_id"] for _ in range(3)]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    # keep_last: 2 pruned the oldest backup from the bucket, manifest and artifact
    assert len(keys) == 4 and not any(ids[0] in k for k in keys)
    assert all(k.startswith("prod/app/") for k in keys)
    listed = _json(run_cli("-c", str(cfg), "backups", "list", "-o", "json", env=env))
    assert [b["id"] for b in listed["backups"]] == ids[:0:-1]
    assert listed["backups"][0]["storage"] == f"s3://{bucket}/prod?endpoint={endpoint}"
    verified = run_cli("-c", str(cfg), "backups", "verify", ids[-1], "--tier", "readable",
                       env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    into = tmp_path / "restored.sqlite3"
    restored = run_cli("-c", str(cfg), "restore", ids[-1], "--into", f"sqlite:///{into}",
                       env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert sql(into, "SELECT count(*) FROM events") == [(500,)]
    # no secret reached the history
    history = run_cli("-c", str(cfg), "history", "-o", "json", env=env).stdout
    assert SECRET_KEY not in history and ACCESS_KEY not in history


@pytest.fixture(autouse=True)
def _no_aws_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI subprocesses get their AWS settings explicitly, never from this process."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
