"""DuckDB backups on real files: export to a tar, check it, restore it into a scratch file."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from wellkept.config import TargetSettings
from wellkept.connector import Dumpable, DumpInfo, DumpOptions
from wellkept.connectors.duckdb import DuckDBConnector
from wellkept.connectors.duckdb_dump import FORMAT, TRAILER
from wellkept.errors import TaskFailed, Unavailable

HOSTILE = 'we"ird \'name'


@pytest.fixture
def workdir(tmp_path: Path) -> Callable[[], DumpOptions]:
    """A fresh private scratch folder for each dump, list or restore (as the pipeline gives)."""
    made = iter(range(1000))

    def make() -> DumpOptions:
        folder = tmp_path / f"work{next(made)}"
        folder.mkdir(mode=0o700)
        return DumpOptions(workdir=folder)

    return make


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "app.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR, price DECIMAL(10,2))")
    conn.execute("INSERT INTO items SELECT i, 'item ' || i, i * 1.25 FROM range(250) t(i)")
    conn.execute("CREATE TABLE orders (id INTEGER, item_id INTEGER REFERENCES items (id))")
    conn.execute("INSERT INTO orders VALUES (1, 7), (2, 7)")
    conn.execute("CREATE SCHEMA odd")
    conn.execute(f'CREATE TABLE odd."{HOSTILE.replace(chr(34), chr(34) * 2)}" '
                 "(k VARCHAR, v VARCHAR)")
    conn.execute(f'INSERT INTO odd."{HOSTILE.replace(chr(34), chr(34) * 2)}" VALUES '
                 "('a', 'it''s'), ('b', NULL), ('c', '\"quoted\"')")
    conn.execute("CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10")
    conn.close()
    return path


def connector(path: Path | str) -> DuckDBConnector:
    url = path if isinstance(path, str) else f"duckdb:///{path}"
    return DuckDBConnector("app", TargetSettings(url=url))


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def dumped(path: Path, options: DumpOptions) -> tuple[bytes, DumpInfo]:
    out = io.BytesIO()
    info = connector(path).dump(out, options)
    return out.getvalue(), info


def test_dump_list_restore_round_trip(source: Path,
                                      workdir: Callable[[], DumpOptions]) -> None:
    conn = connector(source)
    assert isinstance(conn, Dumpable)
    assert conn.dump_estimate() >= source.stat().st_size
    out = io.BytesIO()
    info = conn.dump(out, workdir())
    assert (info.format, info.suffix, info.counts_exact) == (FORMAT, ".tar", True)
    assert info.counts == {"main.items": 250, "main.orders": 2, f"odd.{HOSTILE}": 3}
    assert info.tools["duckdb"] == duckdb.__version__

    names = conn.list_dump(io.BytesIO(out.getvalue()), FORMAT, workdir())
    assert {"schema.sql", "load.sql", TRAILER} <= set(names)
    assert sum(n.endswith(".parquet") for n in names) == 3

    with conn.scratch() as url:
        scratch_path = Path(url.split(":///", 1)[1])
        target = connector(url)
        assert target.is_empty()
        target.restore(io.BytesIO(out.getvalue()), FORMAT, workdir())
        assert target.content_counts() == info.counts
        assert not target.is_empty()
        assert target.smoke("SELECT count(*), sum(price) FROM items") == [
            250, rows(source, "SELECT sum(price) FROM items")[0][0]]
        assert target.smoke("SELECT count(*) FROM items") == 250
        query = f'SELECT * FROM odd."{HOSTILE.replace(chr(34), chr(34) * 2)}" ORDER BY k'
        assert rows(scratch_path, query) == rows(source, query)
        assert rows(scratch_path, "SELECT * FROM items ORDER BY id") == rows(
            source, "SELECT * FROM items ORDER BY id")
        assert rows(scratch_path, "SELECT count(*) FROM cheap") == [(8,)]
    assert not scratch_path.parent.exists()


def test_truncated_or_foreign_dumps_fail_the_listing(
        source: Path, workdir: Callable[[], DumpOptions]) -> None:
    data, _ = dumped(source, workdir())
    conn = connector(source)
    # cut inside a member, and exactly before the trailer (a valid but shorter tar); the
    # zero padding after the trailer is not data, so cuts there go unnoticed, and rightly
    end = data.index(TRAILER.encode())
    for cut in (data[: end // 2], data[:end], data[: end + 600], b"", b"x" * 700):
        with pytest.raises(TaskFailed):
            conn.list_dump(io.BytesIO(cut), FORMAT, workdir())
    with pytest.raises(TaskFailed, match="reads duckdb_export"):
        conn.list_dump(io.BytesIO(data), "redis_rdb", workdir())


def test_a_failed_restore_leaves_the_database_as_it_was(
        source: Path, workdir: Callable[[], DumpOptions], tmp_path: Path) -> None:
    data, _ = dumped(source, workdir())
    other = tmp_path / "other.duckdb"
    conn = duckdb.connect(str(other))
    conn.execute("CREATE SCHEMA odd")  # the import's CREATE SCHEMA odd must fail
    conn.execute("CREATE TABLE keep (x INTEGER)")
    conn.close()
    target = connector(other)
    with pytest.raises(TaskFailed, match="already exists"):
        target.restore(io.BytesIO(data), FORMAT, workdir())
    assert target.content_counts() == {"main.keep": 0}
    # a truncated dump is refused before anything is imported
    with pytest.raises(TaskFailed):
        target.restore(io.BytesIO(data[:-3000]), FORMAT, workdir())
    assert target.content_counts() == {"main.keep": 0}


@pytest.fixture
def held(source: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the file read-write, as an ingest job would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(source)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_a_file_held_by_another_process_is_unavailable(
        source: Path, held: subprocess.Popen[str], workdir: Callable[[], DumpOptions]) -> None:
    conn = connector(source)
    with pytest.raises(Unavailable, match=f"PID {held.pid}"):
        conn.dump(io.BytesIO(), workdir())
    with pytest.raises(Unavailable):
        conn.content_counts()


def test_replace_drops_what_the_dump_holds_and_keeps_the_rest(
        source: Path, workdir: Callable[[], DumpOptions], tmp_path: Path) -> None:
    data, info = dumped(source, workdir())
    other = tmp_path / "other.duckdb"
    target = connector(other)
    assert target.is_empty()  # no file yet: the restore creates it
    target.restore(io.BytesIO(data), FORMAT, workdir())
    conn = duckdb.connect(str(other))
    conn.execute("DELETE FROM orders")  # drifted since: the restore must bring it back
    conn.execute("CREATE TABLE keep (x INTEGER)")
    conn.close()
    with pytest.raises(TaskFailed, match="already exists"):
        target.restore(io.BytesIO(data), FORMAT, workdir())
    options = workdir()
    target.restore(io.BytesIO(data), FORMAT,
                   DumpOptions(workdir=options.workdir, replace=True))
    assert target.content_counts() == {**info.counts, "main.keep": 0}
