"""Backups end to end through the real CLI: dump, verify, restore, damage, kill, retention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from tests.helpers import run_cli, scratch_databases, tmpfs, wellkept_bin


def _json(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _fill_pg(url: str, rows: int = 20000) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, note text)")
        conn.execute("INSERT INTO orders SELECT g, g * 1.5, md5(g::text) "
                     "FROM generate_series(1, %s) g", (rows,))
        conn.execute('CREATE TABLE "odd ""name"" ;drop" (x int)')
        conn.execute('INSERT INTO "odd ""name"" ;drop" VALUES (1), (2), (3)')


def _pg_config(write_config: Callable[..., Path], url: str, extra: str = "") -> Path:
    return write_config(f"""
        targets:
          db: {{url: "{url}"}}
        tasks:
          nightly:
            kind: backup
            target: db
            destination: backups/
            verify: restore
            smoke_queries: ["SELECT count(*) FROM orders"]
        {extra}""")


def _latest(cfg: Path) -> dict[str, Any]:
    listed = run_cli("-c", str(cfg), "backups", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return _json(listed)["backups"][0]  # type: ignore[no-any-return]


def test_postgres_backup_restore_verify_round_trip(
        postgres_db: str, postgres_admin_url: str, write_config: Callable[..., Path],
        tmp_path: Path) -> None:
    _fill_pg(postgres_db)
    cfg = _pg_config(write_config, postgres_db)
    before = scratch_databases(postgres_admin_url)
    done = run_cli("-v", "-c", str(cfg), "backup", "db", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restore test: 2 tables load unlogged" in done.stderr
    result = _json(done)["results"][0]
    assert result["details"]["verification"]["passed"] is True
    assert result["details"]["verification"]["smoke"] == {"SELECT count(*) FROM orders": 20000}
    entry = _latest(cfg)
    assert entry["verify_status"] == "passed" and entry["verify_tier"] == "restore"
    artifact = tmp_path / "backups" / entry["artifact"]
    manifest = json.loads((artifact.parent / f"{entry['id']}.manifest.json").read_text())
    assert manifest["counts"] == {"public.orders": 20000, 'public.odd "name" ;drop': 3}
    assert manifest["sha256"] == entry["sha256"] and manifest["compression"] == "zstd"
    assert artifact.stat().st_mode & 0o777 == 0o600
    # every folder the backup made is owner-only, not just the last one
    for folder in (tmp_path / "backups", artifact.parent):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    # no scratch database left behind
    assert scratch_databases(postgres_admin_url) <= before
    # --create makes the database (a hostile name, quoted), then it is restored into
    name = 'wk_restore "t" ;drop ✓'
    into = postgres_admin_url.rsplit("/", 1)[0] + "/" + quote(name, safe="")
    try:
        restored = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create",
                           "-o", "json")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert _json(restored)["passed"] is True
        # --create into a database that exists is refused, and changes nothing
        exists = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create",
                         "--yes")
        assert exists.returncode == 2 and "exists already" in exists.stderr, exists.stderr
        with psycopg.connect(into) as a, psycopg.connect(postgres_db) as b:
            query = "SELECT id, total, note FROM orders ORDER BY id"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
        # a second restore over it is refused without --yes (exit 2), then done with it
        again = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into)
        assert again.returncode == 2 and "not empty" in again.stderr
        forced = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--yes")
        assert forced.returncode == 0, forced.stdout + forced.stderr
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def test_a_flipped_byte_fails_checksum_and_a_truncated_backup_fails_readable(
        postgres_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    _fill_pg(postgres_db)
    cfg = _pg_config(write_config, postgres_db)
    assert run_cli("-c", str(cfg), "backup", "db").returncode == 0
    entry = _latest(cfg)
    artifact = tmp_path / "backups" / entry["artifact"]
    good = artifact.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    artifact.write_bytes(bytes(flipped))
    check = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "checksum")
    assert check.returncode == 1 and "sha256" in check.stdout
    assert _latest(cfg)["verify_status"] == "failed"
    # the deeper tiers, which decompress as they go, also name the checksum, not the
    # decompressor's own error; a garbled artifact is damage, never a crash
    for tier in ("readable", "restore"):
        deeper = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", tier,
                         "-o", "json")
        result = _json(deeper)["results"][0]
        assert deeper.returncode == 1 and "does not match its manifest" in result["message"]
        assert not any("Traceback" in e for e in result["errors"]), result["errors"]
    artifact.write_bytes(b"\x00garbage" * 1000)
    garbled = _json(run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier",
                            "restore", "-o", "json"))["results"][0]
    assert garbled["status"] == "failed" and "checksum" in garbled["message"]
    assert not any("Traceback" in e for e in garbled["errors"])
    artifact.write_bytes(good[: len(good) * 2 // 3])
    readable = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "readable",
                       "-o", "json")
    assert readable.returncode == 1
    message = _json(readable)["results"][0]["message"]
    assert "bytes" in message or "damaged" in message or "truncated" in message, message
    artifact.write_bytes(good)  # intact again: every tier passes
    for tier in ("checksum", "readable", "restore"):
        ok = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", tier)
        assert ok.returncode == 0, ok.stdout


def test_a_damaged_backup_is_refused_before_the_restore_touches_the_database(
        postgres_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    """pg_restore --clean drops the tables before it reads their data: a damaged artifact
    found only at the end of the stream would leave the database emptied. The stored bytes
    are checked first, so a restore over a live database refuses it with the data intact."""
    _fill_pg(postgres_db, rows=200000)
    cfg = _pg_config(write_config, postgres_db)
    assert run_cli("-c", str(cfg), "backup", "db").returncode == 0
    entry = _latest(cfg)
    artifact = tmp_path / "backups" / entry["artifact"]
    good = artifact.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    for damaged, finding in ((good[: len(good) * 3 // 4], "the manifest says"),
                             (bytes(flipped), "does not match its manifest")):
        artifact.write_bytes(damaged)
        done = run_cli("-c", str(cfg), "restore", entry["id"], "--into", postgres_db, "--yes")
        assert done.returncode == 1, done.stdout + done.stderr
        with psycopg.connect(postgres_db) as conn:
            assert conn.execute("SELECT count(*) FROM orders").fetchone() == (200000,)
            assert conn.execute('SELECT count(*) FROM "odd ""name"" ;drop"').fetchone() == (3,)
        assert finding in done.stderr and "nothing was restored" in done.stderr, done.stderr
    # --create: a database that exists is refused before the artifact is read (exit 2, not
    # the checksum's 1); a new one is made, then removed again when the check fails
    exists = run_cli("-c", str(cfg), "restore", entry["id"], "--into", postgres_db, "--create")
    assert exists.returncode == 2 and "exists already" in exists.stderr, exists.stderr
    name = postgres_db.rsplit("/", 1)[1] + "_damaged"
    into = postgres_db.rsplit("/", 1)[0] + "/" + name
    created = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create")
    assert created.returncode == 1, created.stdout + created.stderr
    assert "does not match its manifest" in created.stderr, created.stderr
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is None, "--create left its database behind"


def test_a_passing_cheaper_check_keeps_a_backups_restore_verification(
        app_db: Path, write_config: Callable[..., Path], tmp_path: Path) -> None:
    """A routine checksum check of a restore-verified backup proves less than the catalog
    already knows: it must not turn the backup into a checksum-verified one (which a
    backup_freshness of tier restore no longer counts) nor lose its measured restore time.
    A failed check of any tier does replace the record: the backup is now known bad."""
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly: {{kind: backup, target: app, verify: restore}}
          fresh: {{kind: backup_freshness, target: app, rpo: 1h, tier: restore}}
        """)
    assert run_cli("-c", str(cfg), "run", "nightly").returncode == 0
    entry = _latest(cfg)
    assert entry["verify_tier"] == "restore" and entry["restore_seconds"] is not None
    for tier in ("checksum", "readable"):
        check = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", tier)
        assert check.returncode == 0, check.stdout + check.stderr
        after = _latest(cfg)
        assert (after["verify_status"], after["verify_tier"]) == ("passed", "restore"), after
        assert after["restore_seconds"] == entry["restore_seconds"]
    fresh = run_cli("-c", str(cfg), "run", "fresh", "-o", "json")
    assert fresh.returncode == 0, fresh.stdout
    artifact = tmp_path / "backups" / entry["artifact"]
    artifact.write_bytes(artifact.read_bytes()[:-10])
    damaged = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "checksum")
    assert damaged.returncode == 1
    after = _latest(cfg)
    assert (after["verify_status"], after["verify_tier"]) == ("failed", "checksum"), after


def test_the_run_after_a_failed_verification_takes_a_new_backup(
        app_db: Path, write_config: Callable[..., Path]) -> None:
    """A run whose verification failed was not interrupted: it finished, with a finding. The
    next run (tomorrow's slot) must dump again, not re-verify yesterday's backup and report
    that as its own, which would leave the target a day behind its schedule."""
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly:
            kind: backup
            target: app
            verify: restore
            smoke_queries: ["${{SMOKE:-SELECT count(*) FROM events}}"]
        """)
    first = run_cli("-c", str(cfg), "run", "nightly", "-o", "json",
                    env={"SMOKE": "SELECT * FROM no_such_table"})
    assert first.returncode == 1
    failed = _json(first)["results"][0]
    assert "verification failed" in failed["message"], failed["message"]
    second = run_cli("-c", str(cfg), "run", "nightly", "-o", "json")
    assert second.returncode == 0, second.stdout + second.stderr
    result = _json(second)["results"][0]
    assert result["details"]["backup_id"] != failed["details"]["backup_id"], result["message"]
    assert result["message"].startswith("backed up "), result["message"]
    listed = _json(run_cli("-c", str(cfg), "backups", "list", "-o", "json"))["backups"]
    assert [b["verify_status"] for b in listed] == ["passed", "failed"]


def test_a_sqlite_restore_into_a_missing_folder_says_so(
        app_db: Path, write_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly: {{kind: backup, target: app}}
        """)
    assert run_cli("-c", str(cfg), "run", "nightly").returncode == 0
    into = tmp_path / "no-such-folder" / "copy.sqlite3"
    done = run_cli("-c", str(cfg), "restore", _latest(cfg)["id"], "--into", f"sqlite:///{into}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"cannot create {into}" in done.stderr and "does not exist" in done.stderr, done.stderr
    assert not into.parent.exists()
    # --create into a file that exists is refused; into a new one it restores
    refused = run_cli("-c", str(cfg), "restore", _latest(cfg)["id"], "--into",
                      f"sqlite:///{app_db}", "--create", "--yes")
    assert refused.returncode == 2 and "exists already" in refused.stderr, refused.stderr
    fresh = tmp_path / "fresh.sqlite3"
    made = run_cli("-c", str(cfg), "restore", _latest(cfg)["id"], "--into", f"sqlite:///{fresh}",
                   "--create")
    assert made.returncode == 0, made.stdout + made.stderr
    assert fresh.exists()


def test_the_password_never_reaches_pg_dumps_command_line(
        postgres_db: str, write_config: Callable[..., Path]) -> None:
    secret = "pw-never-in-argv-31337"
    _fill_pg(postgres_db, rows=400000)
    url = postgres_db.replace("postgres@", f"postgres:{secret}@")
    cfg = _pg_config(write_config, url).with_suffix(".yml")
    cfg.write_text(cfg.read_text().replace("verify: restore", "verify: checksum"))
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "pg_dump" in argv and "--snapshot" in argv:
                    seen.append(argv)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = run_cli("-c", str(cfg), "backup", "db")
    finally:
        stop.set()
        watcher.join()
    assert done.returncode == 0, done.stdout + done.stderr
    assert seen, "pg_dump was never seen running"
    assert not [a for a in seen if secret in a]
    assert secret not in done.stdout + done.stderr


def test_sqlite_backup_encrypted_with_age_round_trips(
        app_db: Path, write_config: Callable[..., Path], tmp_path: Path) -> None:
    pyrage = pytest.importorskip("pyrage")  # an installed extra in the dev set
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(str(identity) + "\n")
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly:
            kind: backup
            target: app
            compression: gzip
            encrypt_to: "{identity.to_public()}"
            age_identity_file: age.key
            verify: restore
        """)
    done = run_cli("-c", str(cfg), "run", "nightly", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    entry = _latest(cfg)
    assert entry["encrypted"] is True and entry["artifact"].endswith(".gz.age")
    raw = (tmp_path / "backups" / entry["artifact"]).read_bytes()
    assert raw.startswith(b"age-encryption.org/v1")
    assert str(identity) not in done.stdout + done.stderr
    into = tmp_path / "restored.sqlite3"
    restored = run_cli("-c", str(cfg), "restore", entry["id"], "--into", f"sqlite:///{into}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    import sqlite3

    a, b = sqlite3.connect(app_db), sqlite3.connect(into)
    for (table,) in a.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        q = f'SELECT * FROM "{table}" ORDER BY 1'
        assert a.execute(q).fetchall() == b.execute(q).fetchall(), table
    # without the identity, verification cannot decrypt and says so; that is no finding
    # against the backup, which stays restore-verified in the catalog
    key_file.write_text("")
    failed = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "readable",
                     "-o", "json")
    assert failed.returncode == 1
    assert "age_identity_file" in _json(failed)["results"][0]["message"]
    key_file.unlink()
    missing = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "readable",
                      "-o", "json")
    assert missing.returncode == 1
    assert "cannot read the age identity file" in _json(missing)["results"][0]["message"]
    kept = _latest(cfg)
    assert (kept["verify_tier"], kept["verify_status"]) == ("restore", "passed"), kept
    # a key that does not open it is a finding: the backup cannot be restored with it
    key_file.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    wrong = run_cli("-c", str(cfg), "backups", "verify", entry["id"], "--tier", "readable",
                    "-o", "json")
    assert wrong.returncode == 1
    assert _latest(cfg)["verify_status"] == "failed"


def test_a_killed_backup_never_lists_as_complete(
        postgres_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    _fill_pg(postgres_db, rows=1500000)
    cfg = _pg_config(write_config, postgres_db)
    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "backup", "db"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "backups" / "db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(folder.glob(".*.partial")) if folder.exists() else []
        if partial and partial[0].stat().st_size > 1 << 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not list(folder.glob("*.manifest.json"))
    assert not [p for p in folder.iterdir() if not p.name.startswith(".")]
    listed = run_cli("-c", str(cfg), "backups", "list", "--rebuild", "-o", "json")
    assert _json(listed)["backups"] == []
    # the next backup sweeps the killed one's partial file once it has been idle for 15 min,
    # and leaves alone one that is still being written
    (orphan,) = folder.glob(".*.partial")
    os.utime(orphan, (time.time() - 16 * 60,) * 2)
    live = folder / ".db-20991231T000000Z-beef.postgresql.zst.partial"
    live.write_bytes(b"being written")
    done = run_cli("-c", str(cfg), "backup", "db", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _json(done)["results"][0]["details"]["swept_partials"] == [orphan.name]
    assert not orphan.exists() and live.exists()


def test_retention_on_twenty_backups_keeps_exactly_the_policy(
        app_db: Path, write_config: Callable[..., Path], tmp_path: Path) -> None:
    from wellkept.config import load_config
    from wellkept.engine import Engine

    stranger = tmp_path / "backups" / "app" / "app-notes-keep-me.txt"
    stranger.parent.mkdir(parents=True)
    stranger.write_text("not ours")
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly: {{kind: backup, target: app, verify: checksum, keep_last: 5}}
        """)
    engine = Engine(load_config(cfg))
    ids = []
    for _ in range(20):
        record = engine.run(engine.resolve(["nightly"])).results[0]
        assert record.status.value == "completed", record.message
        ids.append(record.details["backup_id"])
    kept = sorted(p.name for p in (tmp_path / "backups" / "app").iterdir())
    expected = sorted([f"{i}.manifest.json" for i in ids[-5:]]
                      + [f"{i}.sqlite.zst" for i in ids[-5:]] + [stranger.name])
    assert kept == expected
    listed = run_cli("-c", str(cfg), "backups", "list", "-o", "json")
    assert [b["id"] for b in _json(listed)["backups"]] == ids[-5:][::-1]


def test_a_dry_run_names_the_backups_the_real_run_prunes(
        app_db: Path, write_config: Callable[..., Path]) -> None:
    """The run adds a backup before it applies retention: its dry run must count that one,
    or `keep_last: 1` over one backup says it would prune nothing and then prunes it."""
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly: {{kind: backup, target: app, verify: checksum, keep_last: 1}}
          unchecked: {{kind: backup, target: app, verify: none, keep_last: 1}}
        """)
    first = _json(run_cli("-c", str(cfg), "run", "nightly", "-o", "json"))["results"][0]
    dry = _json(run_cli("-c", str(cfg), "run", "nightly", "--dry-run", "-o", "json"))
    would = dry["results"][0]
    assert would["details"]["would_prune"] == [first["details"]["backup_id"]], would
    assert "prune 1 backup" in would["message"], would["message"]
    real = _json(run_cli("-c", str(cfg), "run", "nightly", "-o", "json"))["results"][0]
    assert real["details"]["pruned"] == would["details"]["would_prune"]
    # a backup that will not be verified prunes nothing, and its dry run says so
    run_cli("-c", str(cfg), "run", "unchecked")
    dry = _json(run_cli("-c", str(cfg), "run", "unchecked", "--dry-run", "-o", "json"))
    assert dry["results"][0]["details"]["would_prune"] == []


def test_a_full_destination_fails_cleanly_and_leaves_nothing(
        postgres_db: str, write_config: Callable[..., Path], tmp_path: Path) -> None:
    _fill_pg(postgres_db, rows=200000)
    with tmpfs(tmp_path / "small", "size=256k") as small:
        cfg = _pg_config(write_config, postgres_db)
        cfg.write_text(cfg.read_text().replace("destination: backups/",
                                               f"destination: {small}"))
        done = run_cli("-c", str(cfg), "backup", "db", "-o", "json")
        assert done.returncode == 1
        result = _json(done)["results"][0]
        assert result["status"] == "failed"
        assert "No space left" in result["message"], result["message"]
        assert [p for p in small.rglob("*") if p.is_file()] == []


def _failed_backup(app_db: Path, write_config: Callable[..., Path], destination: Path
                   ) -> tuple[Path, dict[str, Any]]:
    """A SQLite backup to ``destination`` through the CLI, which must fail (exit 1): its config
    and the run's JSON result."""
    cfg = write_config(f"""
        targets:
          app: {{url: "sqlite:///{app_db}"}}
        tasks:
          nightly: {{kind: backup, target: app, destination: "{destination}"}}
        """)
    done = run_cli("-c", str(cfg), "run", "nightly", "-o", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    result = _json(done)["results"][0]
    assert result["status"] == "failed"
    return cfg, result


def test_a_destination_full_by_the_manifest_leaves_no_artifact(
        app_db: Path, write_config: Callable[..., Path], tmp_path: Path) -> None:
    """The artifact fits but the manifest does not (a tmpfs with inodes for the target's folder
    and one file only): the run fails and the orphaned artifact, which no manifest will ever
    name and no sweep would find, is deleted rather than left to keep the disk full."""
    with tmpfs(tmp_path / "small", "size=4m,nr_inodes=3") as small:
        cfg, result = _failed_backup(app_db, write_config, small)
        assert "No space left" in result["message"], result["message"]
        assert [p for p in small.rglob("*") if p.is_file()] == []
        assert _json(run_cli("-c", str(cfg), "backups", "list", "-o", "json"))["backups"] == []


def test_a_read_only_destination_fails_cleanly(app_db: Path, write_config: Callable[..., Path],
                                               tmp_path: Path) -> None:
    """Root ignores file modes, so the folder is a read-only mount, as a remounted or
    write-protected volume would be."""
    with tmpfs(tmp_path / "frozen", "ro,size=1m") as frozen:
        cfg, result = _failed_backup(app_db, write_config, frozen)
        assert "Read-only file system" in result["message"], result["message"]
        assert not any(frozen.rglob("*"))
        assert _json(run_cli("-c", str(cfg), "backups", "list", "-o", "json"))["backups"] == []


def test_sigterm_during_a_restore_with_create_leaves_no_database_behind(
        postgres_db: str, postgres_admin_url: str, write_config: Callable[..., Path]) -> None:
    """SIGTERM (systemd stopping a unit, `timeout`) mid-restore is handled like Ctrl-C: the
    database --create made is dropped and wellkept exits 143. Before, SIGTERM killed it at
    once and left a half-restored database that the same command then refused (exit 2)."""
    _fill_pg(postgres_db, rows=1_000_000)
    cfg = _pg_config(write_config, postgres_db)
    assert run_cli("-c", str(cfg), "backup", "db").returncode == 0
    entry = _latest(cfg)
    name = postgres_db.rsplit("/", 1)[1] + "_term"
    into = postgres_admin_url.rsplit("/", 1)[0] + "/" + name

    def restoring() -> bool:  # pg_restore has made the table and is loading it
        try:
            with psycopg.connect(into) as conn:
                return conn.execute("SELECT to_regclass('orders') IS NOT NULL").fetchone() \
                    == (True,)
        except psycopg.OperationalError:
            return False

    def exists() -> bool:
        with psycopg.connect(postgres_admin_url) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (name,)).fetchone() is not None

    proc = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "restore", entry["id"], "--into",
                             into, "--create"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while not restoring() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the restore ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "error: terminated" in err, err
        assert not exists(), "the database --create made was left behind"
        again = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create")
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def test_a_restore_that_fails_after_create_leaves_no_database_behind(
        postgres_db: str, postgres_admin_url: str, write_config: Callable[..., Path],
        tmp_path: Path) -> None:
    """--create made the database, then the restore failed (here: the artifact cannot be
    decrypted with the identity at hand): the new database is dropped, so the same command
    can be run again once the cause is fixed."""
    pyrage = pytest.importorskip("pyrage")  # an installed extra in the dev set
    _fill_pg(postgres_db, rows=100)
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(str(identity) + "\n")
    cfg = _pg_config(write_config, postgres_db).parent / "enc.yml"
    cfg.write_text(textwrap.dedent(f"""\
        targets:
          db: {{url: "{postgres_db}"}}
        tasks:
          nightly:
            kind: backup
            target: db
            destination: backups/
            verify: checksum
            encrypt_to: "{identity.to_public()}"
            age_identity_file: age.key
        """), encoding="utf-8")
    done = run_cli("-c", str(cfg), "backup", "db")
    assert done.returncode == 0, done.stdout + done.stderr
    entry = _latest(cfg)
    key_file.write_text(str(pyrage.x25519.Identity.generate()) + "\n")  # not the right one
    name = postgres_db.rsplit("/", 1)[1] + "_copy"
    into = postgres_admin_url.rsplit("/", 1)[0] + "/" + name

    def exists() -> bool:
        with psycopg.connect(postgres_admin_url) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (name,)).fetchone() is not None

    try:
        failed = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "No matching keys" in failed.stderr, failed.stderr
        assert not exists(), "the database --create made was left behind"
        key_file.write_text(str(identity) + "\n")
        again = run_cli("-c", str(cfg), "restore", entry["id"], "--into", into, "--create")
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
