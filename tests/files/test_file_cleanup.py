"""file_cleanup on real files: ages, globs, compress in place, and hostile paths (symlinks
pointing outside, a file held open for writing by another process, a flocked file and folder,
another filesystem mounted inside, names with spaces and newlines)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.files.peers import wk
from tests.helpers import run_cli

DAY = 86400


def aged(path: Path, days: float, text: str = "data\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


@pytest.fixture
def holder() -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    """Start helper processes (a writer, a lock holder) and stop them afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


WRITER = """import sys, time
f = open(sys.argv[1], "a")
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""
LOCKER = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("ready", flush=True)
time.sleep(120)
"""


def test_retention_presets(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    data = tmp_path / "data"
    old_parquet = aged(data / "market" / "2026" / "prices 2026-08-01.parquet", 100, "p" * 1000)
    fresh_parquet = aged(data / "market" / "prices-2026-11-20.parquet", 10)
    old_log = aged(data / "logs" / "app.log.3", 40, "l" * 500)
    new_log = aged(data / "logs" / "app.log", 1)
    tmp_old = aged(data / "tmp" / "job\nwith newline.tmp", 8, "t" * 300)
    tmp_new = aged(data / "tmp" / "now.tmp", 1)
    aged(data / "tmp" / "emptied" / "x.tmp", 9)
    os.utime(data / "tmp" / "emptied", (time.time() - 9 * DAY,) * 2)
    cfg = write_config("""
        tasks:
          retention:
            kind: file_cleanup
            rules:
              - {preset: market_data, path: data/market}
              - {preset: logs, path: data/logs}
              - {preset: temp, path: data/tmp}
        """)
    preview = wk(cfg, "retention", "--dry-run")
    assert preview["metrics"]["files_matched"] == 4
    assert preview["metrics"]["bytes_matched"] == 1000 + 500 + 300 + 5
    assert preview["metrics"]["files_deleted"] == 0 and old_parquet.exists()
    # what it found, and zero for what it did not do (the contract)
    assert preview["metrics"]["files_processed"] == 0 and preview["metrics"]["dirs_removed"] == 0
    assert preview["metrics"]["dirs_matched"] == 0  # "emptied" still holds x.tmp
    assert preview["message"].startswith("would act on 4 files (1.8 KiB) past their age")
    assert {f["path"] for f in preview["details"]["files"]} == {
        str(old_parquet), str(old_log), str(tmp_old), str(data / "tmp" / "emptied" / "x.tmp")}
    result = wk(cfg, "retention")
    assert result["status"] == "completed", result
    assert result["metrics"]["files_deleted"] == 4
    assert result["metrics"]["bytes_freed"] == 1805
    assert result["metrics"]["dirs_removed"] == 1 and not (data / "tmp" / "emptied").exists()
    assert not old_parquet.exists() and not old_log.exists() and not tmp_old.exists()
    assert fresh_parquet.exists() and new_log.exists() and tmp_new.exists()
    assert (data / "market" / "2026").exists()  # market_data removes no folders


def test_symlinks_pointing_outside_are_never_followed(tmp_path: Path,
                                                      write_config: Callable[[str], Path]
                                                      ) -> None:
    outside = tmp_path / "precious"
    keep = aged(outside / "database.dump", 400, "must survive")
    (outside / "sub").mkdir()
    keep2 = aged(outside / "sub" / "more.dump", 400)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.symlink(keep, tmp / "link-to-file")
    os.symlink(outside, tmp / "link-to-folder")
    os.symlink(outside / "sub", tmp / "old sub")
    for link in ("link-to-file", "link-to-folder", "old sub"):
        os.utime(tmp / link, (time.time() - 400 * DAY,) * 2, follow_symlinks=False)
    old = aged(tmp / "old file", 30)
    cfg = write_config("""
        tasks:
          clean: {kind: file_cleanup, rules: [{path: tmp, age: 1d, remove_empty_dirs: true}]}
        """)
    result = wk(cfg, "clean")
    assert result["status"] == "completed"
    assert keep.read_text() == "must survive" and keep2.exists()
    assert sorted(os.listdir(tmp)) == ["link-to-file", "link-to-folder", "old sub"]
    assert not old.exists()
    assert result["metrics"]["files_deleted"] == 1


def test_files_being_written_or_locked_are_skipped(tmp_path: Path, holder: Any,
                                                   write_config: Callable[[str], Path]) -> None:
    spool = tmp_path / "spool"
    written = aged(spool / "being written.csv", 30)
    locked = aged(spool / "locked.csv", 30)
    aged(spool / "locked-folder" / "inside.csv", 30)
    free = aged(spool / "free.csv", 30)
    holder([sys.executable, "-c", WRITER, str(written)])
    holder([sys.executable, "-c", LOCKER, str(locked)])
    holder([sys.executable, "-c", LOCKER, str(spool / "locked-folder")])
    cfg = write_config("""
        tasks:
          clean: {kind: file_cleanup, rules: [{path: spool, include: ["*.csv"], age: 7d}]}
        """)
    result = wk(cfg, "clean")
    assert result["status"] == "completed", result
    assert not free.exists()
    assert written.exists() and locked.exists()
    assert (spool / "locked-folder" / "inside.csv").exists()
    reasons = {Path(s["path"]).name: s["reason"] for s in result["details"]["skipped"]}
    assert reasons["being written.csv"].startswith("open for writing by pid")
    assert "FLOCK" in reasons["locked.csv"] and "FLOCK" in reasons["locked-folder"]
    assert result["metrics"]["files_skipped"] == 2 and result["metrics"]["files_deleted"] == 1


def test_compress_in_place_and_another_filesystem(tmp_path: Path,
                                                  write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    old = aged(logs / "app 2026-10-01.log", 10, "line\n" * 2000)
    mtime = old.stat().st_mtime
    already = aged(logs / "older.log.gz", 10)
    mount = logs / "mounted"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"the test needs to mount a tmpfs (root): {proc.stderr}"
    try:
        other_fs = aged(mount / "elsewhere.log", 10)
        cfg = write_config("""
            tasks:
              squeeze: {kind: file_cleanup, rules: [{path: logs, include: ["*.log*"], age: 7d,
                                                     action: compress, compression: gzip}]}
            """)
        result = wk(cfg, "squeeze")
        assert result["status"] == "completed", result
        assert other_fs.exists() and not Path(f"{other_fs}.gz").exists()
        assert {s["reason"] for s in result["details"]["skipped"]} == {"another filesystem"}
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    packed = Path(f"{old}.gz")
    assert not old.exists() and gzip.decompress(packed.read_bytes()) == b"line\n" * 2000
    assert packed.stat().st_mtime == pytest.approx(mtime, abs=1)
    assert already.exists() and not Path(f"{already}.gz").exists()
    assert result["metrics"]["files_compressed"] == 1
    assert result["metrics"]["bytes_freed"] == 10000 - packed.stat().st_size


def test_rules_are_checked_at_load(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    cfg = write_config("""
        tasks:
          bad: {kind: file_cleanup, rules: [{path: x, include: ["../etc/*"], age: 30,
                                             age_by: btime}]}
        """)
    proc = run_cli("-c", str(cfg), "check")
    assert proc.returncode == 2
    assert "tasks.bad.rules[0].include" in proc.stderr and "'..'" in proc.stderr
    assert "tasks.bad.rules[0].age: invalid duration 30" in proc.stderr
    assert "tasks.bad.rules[0].age_by: 'btime' is not allowed" in proc.stderr


def test_on_a_files_target_paths_stay_inside_its_folder(tmp_path: Path,
                                                        write_config: Callable[[str], Path]
                                                        ) -> None:
    uploads = tmp_path / "uploads"
    inside = aged(uploads / "tmp" / "old.bin", 30)
    outside = aged(tmp_path / "elsewhere" / "old.bin", 30)
    cfg = write_config("""
        targets:
          uploads: {url: "files:///uploads"}
        tasks:
          inside: {kind: file_cleanup, target: uploads, rules: [{path: tmp, age: 7d}]}
          escape: {kind: file_cleanup, target: uploads, rules: [{path: ../elsewhere, age: 7d}]}
        """)
    assert wk(cfg, "inside")["metrics"]["files_deleted"] == 1 and not inside.exists()
    escaped = wk(cfg, "escape")
    assert escaped["status"] == "failed" and "outside the folder of target uploads" in \
        escaped["message"]
    assert outside.exists()
    on_redis = write_config("""
        targets:
          cache: {url: "redis://127.0.0.1:1/0"}
        tasks:
          wrong: {kind: file_cleanup, target: cache, rules: [{path: tmp, age: 7d}]}
        """, name="redis.yml")
    skipped = wk(on_redis, "wrong")
    assert skipped["status"] == "skipped" and "FileTree" in skipped["message"]


def test_age_by_mtime_atime_ctime_and_all(tmp_path: Path,
                                          write_config: Callable[[str], Path]) -> None:
    """The age is taken from the chosen timestamp; `all` needs every one of them old (a
    file's ctime cannot be set back, so `ctime` and `all` keep what was just made)."""
    old = time.time() - 30 * DAY
    for rule in ("mtime", "atime", "ctime", "all"):
        folder = tmp_path / rule
        written_long_ago = aged(folder / "read recently.dat", 30)   # old mtime, fresh atime
        os.utime(written_long_ago, (time.time(), old))
        untouched = aged(folder / "untouched.dat", 30)              # old mtime and atime
        fresh = aged(folder / "fresh.dat", 0)
        assert (written_long_ago.stat().st_atime > old + DAY and
                untouched.stat().st_atime < old + DAY and fresh.exists())
    cfg = write_config("""
        tasks:
          by-mtime: {kind: file_cleanup, rules: [{path: mtime, age: 7d}]}
          by-atime: {kind: file_cleanup, rules: [{path: atime, age: 7d, age_by: atime}]}
          by-ctime: {kind: file_cleanup, rules: [{path: ctime, age: 7d, age_by: ctime}]}
          by-all: {kind: file_cleanup, rules: [{path: all, age: 7d, age_by: all}]}
        """)
    left = {}
    for rule in ("mtime", "atime", "ctime", "all"):
        result = wk(cfg, f"by-{rule}")
        assert result["status"] == "completed", result
        left[rule] = sorted(os.listdir(tmp_path / rule))
    assert left == {"mtime": ["fresh.dat"],
                    "atime": ["fresh.dat", "read recently.dat"],
                    "ctime": ["fresh.dat", "read recently.dat", "untouched.dat"],
                    "all": ["fresh.dat", "read recently.dat", "untouched.dat"]}


def test_a_file_written_between_the_scan_and_the_action_is_left_alone(tmp_path: Path) -> None:
    """The last guard before a deletion or compression: the file is stat'ed again through
    its folder's descriptor, and one that grew or was rewritten since the scan stays."""
    from wellkept.fs.walk import Entry, Skipped
    from wellkept.tasks.file_cleanup import FileCleanup, Rule

    counts = {k: 0 for k in ("files_processed", "files_deleted", "files_compressed",
                             "files_skipped", "bytes_freed", "bytes_written")}
    for action in ("delete", "compress"):
        folder = tmp_path / action
        path = aged(folder / "being\nwritten.log", 30)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            entry = Entry(fd, path.name, path, path.name, os.lstat(path))
            with path.open("a") as fh:  # a writer appends after the scan
                fh.write("one more line\n")
            skipped = Skipped()
            FileCleanup._act(Rule(path=str(folder), age="7d", action=action), entry, counts,
                             skipped)
        finally:
            os.close(fd)
        assert path.read_text() == "data\none more line\n"
        assert sorted(os.listdir(folder)) == [path.name]
        assert skipped.entries == [{"path": str(path), "reason": "changed since the scan"}]
    assert counts["files_skipped"] == 2 and counts["files_processed"] == 0
    assert counts["bytes_freed"] == 0


def test_a_tree_thousands_of_folders_deep_does_not_stop_the_cleanup(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    # anyone can make one in /tmp: it ended the walk with a RecursionError, nothing cleaned
    root = tmp_path / "tmp"
    aged(root / "old.txt", 10)
    deep = root
    for _ in range(1200):
        deep = deep / "d"
        deep.mkdir()
    aged(deep / "deep.txt", 10)
    cfg = write_config("""
        tasks:
          clean: {kind: file_cleanup, rules: [{path: tmp, age: 1d}]}
        """)
    try:
        result = wk(cfg, "clean")
        assert result["status"] == "completed", result
        assert not (root / "old.txt").exists()
        assert (deep / "deep.txt").exists()
        assert result["details"]["skipped_reasons"] == {
            "more than 200 folders deep (not entered)": 1}
    finally:
        _remove_deep(root)


def _remove_deep(root: Path) -> None:
    """Remove a tree of nested ``d`` folders from the bottom up: shutil.rmtree (and so
    pytest's own cleanup of tmp_path) recurses once per level and fails on it."""
    levels = [root]
    while (levels[-1] / "d").is_dir():
        levels.append(levels[-1] / "d")
    for level in reversed(levels):
        for child in level.iterdir():
            if not child.is_dir():
                child.unlink()
        level.rmdir()


@pytest.mark.parametrize("path", ["/", "/usr", "/var/log", "~", "link-to-root"])
def test_a_rule_on_a_system_or_home_folder_is_refused_before_anything_is_touched(
        tmp_path: Path, write_config: Callable[[str], Path], path: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # one slip in a rule (path: /, path: ~) would otherwise age out a whole system
    home = tmp_path / "home"
    aged(home / "notes.txt", 400)
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "link-to-root").symlink_to("/")
    aged(tmp_path / "tmp" / "old.txt", 10)
    cfg = write_config(f"""
        tasks:
          clean: {{kind: file_cleanup, rules: [{{path: tmp, age: 1d}},
                                               {{path: "{path}", age: 365d}}]}}
        """)
    for dry in (True, False):
        result = wk(cfg, "clean", *(["--dry-run"] if dry else []))
        assert result["status"] == "failed", result
        assert "is a system or home folder" in result["message"], result["message"]
    assert (tmp_path / "tmp" / "old.txt").exists()  # the other rule did not run either
    assert (home / "notes.txt").exists()


def test_hard_linked_files_free_nothing_and_are_not_compressed(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """Deleting one name of a file with another frees no space, and compressing it would
    only add a compressed copy beside the data the other name keeps."""
    aged(tmp_path / "drop" / "a.log", 10, "a" * 5000)
    os.link(tmp_path / "drop" / "a.log", tmp_path / "kept-a.log")
    aged(tmp_path / "drop" / "b.log", 10, "b" * 3000)
    aged(tmp_path / "pack" / "c.log", 10, "c" * 8000)
    os.link(tmp_path / "pack" / "c.log", tmp_path / "kept-c.log")
    cfg = write_config("""
        tasks:
          clean: {kind: file_cleanup, rules: [{path: drop, age: 1d},
                                              {path: pack, age: 1d, action: compress}]}
        """)
    result = wk(cfg, "clean")
    assert result["status"] == "completed", result
    assert result["metrics"]["files_deleted"] == 2
    assert result["metrics"]["bytes_freed"] == 3000  # b.log only: a.log lives on
    assert result["metrics"]["files_compressed"] == 0
    assert (tmp_path / "pack" / "c.log").exists() and (tmp_path / "kept-a.log").exists()
    assert result["details"]["skipped"] == [{
        "path": str(tmp_path / "pack" / "c.log"),
        "reason": "has 1 other hard link(s); compressing it would free nothing"}]


def test_a_run_stopped_midway_reports_what_it_deleted(
        tmp_path: Path, write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time limit (or Ctrl-C, SIGTERM) stops the walk: the record keeps the files already
    deleted (a partial failure), not a bare failure with no figures."""
    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.tasks.file_cleanup import FileCleanup

    for i in range(12):
        aged(tmp_path / "tmp" / f"old-{i:02}.txt", 10)
    cfg = write_config("""
        tasks:
          clean: {kind: file_cleanup, timeout: 1s, rules: [{path: tmp, age: 1d}]}
        """)
    act = FileCleanup._act

    def slow_act(*args: Any) -> None:
        act(*args)
        time.sleep(0.3)

    monkeypatch.setattr(FileCleanup, "_act", staticmethod(slow_act))
    engine = Engine(load_config(cfg))
    record = engine.run_one(engine.resolve(["clean"])[0])
    left = len(list((tmp_path / "tmp").iterdir()))
    assert str(record.status) == "partial_failure", record.message
    assert record.message.startswith("timed out after 1s: deleted "), record.message
    assert "stopped before the end" in record.message
    assert 0 < record.metrics["files_deleted"] == 12 - left < 12


def test_a_leftover_temporary_file_is_not_compressed(tmp_path: Path,
                                                     write_config: Callable[[str], Path]) -> None:
    """A compression killed midway leaves `.app.log.gz.wktmp`; if its source is gone, a
    compress rule must not make `.app.log.gz.wktmp.gz` of it; a delete rule removes it."""
    logs = tmp_path / "logs"
    stale = aged(logs / ".app.log.gz.wktmp", 10, "half a gzip stream")
    plain = aged(logs / "other.log", 10, "line\n" * 100)
    cfg = write_config("""
        tasks:
          squeeze: {kind: file_cleanup, rules: [{path: logs, include: ["*"], age: 7d,
                                                 action: compress}]}
          sweep: {kind: file_cleanup, rules: [{path: logs, include: ["*"], age: 7d}]}
        """)
    result = wk(cfg, "squeeze")
    assert result["status"] == "completed", result
    assert result["metrics"]["files_compressed"] == 1
    assert sorted(os.listdir(logs)) == [".app.log.gz.wktmp", "other.log.gz"]
    assert stale.read_text() == "half a gzip stream" and not plain.exists()
    assert wk(cfg, "sweep")["metrics"]["files_deleted"] == 2
    assert os.listdir(logs) == []
