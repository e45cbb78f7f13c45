"""Archive files: what a crash leaves ahead of the source is taken back out, nothing more."""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import pytest

from wellkept.archive_file import ArchiveFile
from wellkept.errors import TaskFailed


def rows(first: int, n: int) -> list[dict[str, object]]:
    return [{"id": i, "v": f"row {i}"} for i in range(first, first + n)]


def keys_in(path: Path) -> list[int]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["id"] for line in fh]


def test_uncommitted_batches_at_the_end_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    arc = ArchiveFile(path)
    assert arc.open(lambda k: True) == 0
    for first in (1, 11, 21):
        arc.append(rows(first, 10), first, first + 9)
    gone = {1, 11}  # the third batch's DELETE never committed: its first key still exists
    again = ArchiveFile(path)
    assert again.open(lambda k: k in gone) == 10
    assert keys_in(path) == list(range(1, 21))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_a_torn_tail_and_a_torn_index_line_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    arc.append(rows(1, 5), 1, 5)
    with path.open("ab") as fh:  # a crash in the middle of writing the next member
        fh.write(gzip.compress(b"id,v\n6,row 6\n")[:9])
    with arc.index.open("a") as fh:
        fh.write('{"start": 40, "end"')
    ArchiveFile(path).open(lambda k: True)
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines == ["id,v", *[f"{i},row {i}" for i in range(1, 6)]]


def test_nothing_is_dropped_when_every_batch_committed(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    arc.append(rows(1, 3), 1, 3)
    assert ArchiveFile(path).open(lambda k: True) == 0
    assert keys_in(path) == [1, 2, 3]


def test_parquet_parts_of_uncommitted_batches_are_removed(tmp_path: Path) -> None:
    import duckdb

    from wellkept.archive_file import open_archive

    path = tmp_path / "a.parquet"
    arc = open_archive(path)
    arc.open(lambda k: True)
    for first in (1, 11, 21):
        arc.append(rows(first, 10), first, first + 9)
    (path / ".part-000004.parquet.tmp").write_bytes(b"half written")
    assert open_archive(path).open(lambda k: k in {1, 11}) == 10
    assert sorted(p.name for p in path.iterdir()) == [
        ".wkindex", "part-000001.parquet", "part-000002.parquet"]
    got = duckdb.sql(f"SELECT id, v FROM read_parquet('{path}/*.parquet') ORDER BY id").fetchall()
    assert got == [(i, f"row {i}") for i in range(1, 21)]


def test_only_the_last_unmarked_batch_is_asked_about(tmp_path: Path) -> None:
    """A batch is written only after the one before it committed, so only the last can be
    uncommitted; one with a commit mark is never asked about, whatever its key says now."""
    path = tmp_path / "a.jsonl.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    asked: list[object] = []
    for first in (1, 11, 21):
        arc.append(rows(first, 10), first, first + 9)
        arc.mark_committed()
    assert ArchiveFile(path).open(lambda k: asked.append(k) or False) == 0  # all marked
    assert asked == [] and keys_in(path) == list(range(1, 31))
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    arc.append(rows(31, 10), 31, 40)  # no mark: a crash before or after its DELETE committed
    assert ArchiveFile(path).open(lambda k: asked.append(k) or False) == 10
    assert asked == [31] and keys_in(path) == list(range(1, 31))
    assert oct(os.stat(arc.index).st_mode & 0o777) == "0o600"


def test_a_damaged_index_line_before_the_last_is_refused(tmp_path: Path) -> None:
    import pytest

    from wellkept.errors import TaskFailed

    path = tmp_path / "a.jsonl.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    for first in (1, 11):
        arc.append(rows(first, 10), first, first + 9)
    lines = arc.index.read_text().splitlines()
    arc.index.write_text("\n".join(["{garbage", *lines[1:]]) + "\n")
    size = path.stat().st_size
    with pytest.raises(TaskFailed, match="damaged at line 1"):
        ArchiveFile(path).open(lambda k: True)
    assert path.stat().st_size == size


def full_disk(fd: int) -> None:
    """An fsync on a full disk (the write before it went only part of the way)."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_batch_whose_write_fails_is_taken_back_out_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (a full disk: part of the member written, then ENOSPC) fails its
    batch, which is rolled back; the file must not keep that half-written member until the
    next run: it is cut back to the batches before it, so it stays a readable archive of
    exactly the rows deleted."""
    path = tmp_path / "a.jsonl.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    arc.append(rows(1, 5), 1, 5)
    arc.mark_committed()
    good = path.stat().st_size
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        arc.append(rows(6, 5), 6, 10)
    monkeypatch.undo()
    assert path.stat().st_size == good
    assert keys_in(path) == [1, 2, 3, 4, 5]
    arc.append(rows(6, 5), 6, 10)  # the run after it appends where the good batches end
    assert keys_in(path) == list(range(1, 11))
    assert ArchiveFile(path).open(lambda k: k <= 5) == 5  # its DELETE did not commit
    assert keys_in(path) == [1, 2, 3, 4, 5]


def test_a_failed_first_batch_leaves_no_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        arc.append(rows(1, 5), 1, 5)
    monkeypatch.undo()
    assert not path.exists()
    assert ArchiveFile(path).open(lambda k: True) == 0


def test_a_csv_archive_refuses_rows_whose_columns_differ_from_its_header(
        tmp_path: Path) -> None:
    """A CSV file has one header, written with its first batch. When the table's columns
    change (one added, dropped or moved) before a later run appends to the same file, its
    rows would sit under the wrong names; the batch is refused instead (and rolled back)."""
    path = tmp_path / "a.csv.gz"
    arc = ArchiveFile(path)
    arc.open(lambda k: True)
    arc.append(rows(1, 2), 1, 2)
    arc.mark_committed()
    again = ArchiveFile(path)  # the next run, after an ALTER TABLE … ADD COLUMN
    again.open(lambda k: True)
    with pytest.raises(TaskFailed, match=r"columns id, v, extra, .* header id, v "):
        again.append([{"id": 3, "v": "row 3", "extra": "x"}], 3, 3)
    with pytest.raises(TaskFailed, match="header"):
        again.append([{"v": "row 3", "id": 3}], 3, 3)
    again.append(rows(3, 2), 3, 4)  # the same columns are fine
    with gzip.open(path, "rt") as fh:
        assert fh.read().splitlines() == ["id,v", *[f"{i},row {i}" for i in range(1, 5)]]


def test_a_parquet_archive_refuses_a_part_with_other_columns(tmp_path: Path) -> None:
    """Readers take a dataset's columns from its first part: a later part with a column
    added would have it silently unreadable (and one with a column dropped would fill it with
    NULLs); such a batch is refused, before anything is written."""
    import duckdb

    from wellkept.archive_file import open_archive

    path = tmp_path / "a.parquet"
    arc = open_archive(path)
    arc.open(lambda k: True)
    arc.append(rows(1, 2), 1, 2)
    arc.mark_committed()
    again = open_archive(path)
    again.open(lambda k: True)
    for changed in ([{"id": 3, "v": "row 3", "extra": "x"}], [{"id": 3}]):
        with pytest.raises(TaskFailed, match="started with the columns id, v "):
            again.append(changed, 3, 3)
    again.append([{"v": "row 3", "id": 3}], 3, 3)  # the same columns, in another order
    assert sorted(p.name for p in path.iterdir()) == [
        ".wkindex", "part-000001.parquet", "part-000002.parquet"]
    got = duckdb.sql(f"SELECT id, v FROM read_parquet('{path}/*.parquet') ORDER BY id").fetchall()
    assert got == [(i, f"row {i}") for i in range(1, 4)]
