"""Backups of folders (``files:///``) and of several targets at once, through the real CLI."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_app_db, run_cli
from wellkept.config import TargetSettings
from wellkept.connector import DumpOptions
from wellkept.connectors.files import FORMAT, FilesConnector, _Exactly
from wellkept.errors import TaskFailed


def _json(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _tree(root: Path) -> Path:
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "app.yml").write_text("db: postgresql://app@db/app\n")
    (root / "etc" / "conf.d" / "extra.yml").write_text("x: 1\n")
    os.chmod(root / "etc" / "app.yml", 0o640)
    (root / "uploads").mkdir()
    (root / "uploads" / "photo.bin").write_bytes(os.urandom(200_000))
    (root / "uploads" / "current").symlink_to("../etc/app.yml")
    (root / "empty").mkdir()
    (root / "cache").mkdir()
    (root / "cache" / "junk.dat").write_bytes(b"x" * 1000)
    (root / "scratch.tmp").write_text("temporary")
    os.mkfifo(root / "pipe")
    return root


def _snapshot(root: Path) -> dict[str, Any]:
    """Every entry below root: a file's bytes and mode, a link's target, a folder."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir",)
        elif path.is_fifo():
            out[rel] = ("fifo",)
        else:
            out[rel] = ("file", path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def test_files_backup_verify_restore_round_trip(write_config: Callable[..., Path],
                                                tmp_path: Path) -> None:
    data = _tree(tmp_path / "data")
    cfg = write_config("""
        targets:
          configs: {url: "files:///data?exclude=*.tmp&exclude=cache"}
        tasks:
          files-backup: {kind: backup, target: configs, destination: backups/,
                         verify: restore, smoke_queries: [etc/app.yml]}
        """)
    done = run_cli("-c", str(cfg), "run", "files-backup", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = _json(done)["results"][0]
    verification = result["details"]["verification"]
    assert verification["passed"] is True, verification
    assert verification["smoke"] == {"etc/app.yml": len("db: postgresql://app@db/app\n")}
    backup_id = result["details"]["backup_id"]
    manifest = json.loads((tmp_path / "backups" / "configs" /
                           f"{backup_id}.manifest.json").read_text())
    # three files, four folders (etc, etc/conf.d, uploads, empty), one link; no fifo, no
    # excluded .tmp file, nothing of the excluded cache folder
    assert manifest["counts"] == {"files": 3, "directories": 4, "symlinks": 1,
                                  "bytes": 200_000 + 28 + 5}
    assert manifest["format"] == FORMAT and manifest["engine"] == "files"

    # restore into a new folder, then compare it entry by entry with the source
    into = tmp_path / "restored"
    restored = run_cli("-c", str(cfg), "restore", backup_id, "--into", f"files:///{into}",
                       "-o", "json")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _json(restored)["passed"] is True
    expected = {k: v for k, v in _snapshot(data).items()
                if not k.startswith("cache") and k not in ("scratch.tmp", "pipe")}
    assert _snapshot(into) == expected
    assert os.readlink(into / "uploads" / "current") == "../etc/app.yml"

    # a folder that is not empty needs --yes, and then it ends up exactly as backed up
    (into / "etc" / "app.yml").write_text("changed")
    (into / "local-only.txt").write_text("goes")
    refused = run_cli("-c", str(cfg), "restore", backup_id, "--into", f"files:///{into}")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    again = run_cli("-c", str(cfg), "restore", backup_id, "--into", f"files:///{into}", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (into / "etc" / "app.yml").read_text() == "db: postgresql://app@db/app\n"
    assert _snapshot(into) == expected


def test_files_target_missing_folder_fails_cleanly(write_config: Callable[..., Path]) -> None:
    cfg = write_config("""
        targets:
          configs: {url: "files:///nowhere"}
        """)
    done = run_cli("-c", str(cfg), "backup", "configs", "-o", "json")
    assert done.returncode == 1
    result = _json(done)["results"][0]
    assert result["status"] == "failed" and "no folder at" in result["message"]


def test_several_targets_back_up_independently(write_config: Callable[..., Path],
                                               tmp_path: Path) -> None:
    """Seed 000's "backup critical data": one item failing leaves the others backed up, the
    batch is a partial failure, and the summary says what failed."""
    _tree(tmp_path / "data")
    make_app_db(tmp_path / "app.sqlite3")
    cfg = write_config("""
        targets:
          configs: {url: "files:///data"}
          app: {url: "sqlite:///app.sqlite3"}
          gone: {url: "sqlite:///missing.sqlite3"}
        tasks:
          critical-data: {kind: backup, targets: [app, gone, configs], destination: critical/}
        """)
    done = run_cli("-c", str(cfg), "run", "critical-data", "-o", "json")
    assert done.returncode == 1
    out = _json(done)
    assert [(r["target"], r["status"]) for r in out["results"]] == [
        ("app", "completed"), ("gone", "failed"), ("configs", "completed")]
    assert out["summary"]["status"] == "partial_failure"
    assert out["summary"]["errors"] == [
        f"critical-data on gone: no SQLite database file at {tmp_path / 'missing.sqlite3'}"]
    assert out["summary"]["targets"]["gone"]["available"] is False
    assert out["summary"]["targets"]["app"]["available"] is True
    listed = _json(run_cli("-c", str(cfg), "backups", "list", "-o", "json"))["backups"]
    assert sorted(b["target"] for b in listed) == ["app", "configs"]
    for b in listed:
        assert (tmp_path / "critical" / b["artifact"]).is_file()
    text = run_cli("-c", str(cfg), "run", "critical-data")
    assert "failed: critical-data on gone: no SQLite database file" in text.stdout


def test_targets_and_target_are_exclusive(write_config: Callable[..., Path]) -> None:
    cfg = write_config("""
        targets:
          app: {url: "sqlite:///app.sqlite3"}
        tasks:
          both: {kind: backup, target: app, targets: [app]}
          unknown: {kind: backup, targets: [app, nope]}
        """)
    checked = run_cli("-c", str(cfg), "check")
    assert checked.returncode == 2
    assert "tasks.both: give either target or targets, not both" in checked.stderr
    assert "tasks.unknown.targets[1]: unknown target 'nope'" in checked.stderr


def _connector(root: Path) -> FilesConnector:
    return FilesConnector("t", TargetSettings(url=f"files:///{root}"))


def _hostile(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        info.size = 0 if kind != tarfile.REGTYPE else 4
        tar.addfile(info, io.BytesIO(b"evil") if kind == tarfile.REGTYPE else None)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_restore_refuses_entries_outside_the_folder(tmp_path: Path, name: str) -> None:
    into = tmp_path / "into"
    with pytest.raises(TaskFailed, match="unexpected entry"):
        _connector(into).restore(_hostile(name), FORMAT, DumpOptions(workdir=tmp_path))
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/abs/escape.txt").exists()


def test_restore_refuses_writing_through_a_symlink(tmp_path: Path) -> None:
    """A link to a folder outside, then a file "under" it: tar's filter refuses the file."""
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("door")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        evil = tarfile.TarInfo("door/planted.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    buf.seek(0)
    with pytest.raises(TaskFailed, match="would land outside"):
        _connector(tmp_path / "into").restore(buf, FORMAT, DumpOptions(workdir=tmp_path))
    assert not (outside / "planted.txt").exists()


def test_truncated_archive_is_not_readable(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    buf = io.BytesIO()
    _connector(root).dump(buf, DumpOptions(workdir=tmp_path))
    cut = io.BytesIO(buf.getvalue()[:150_000])
    with pytest.raises(TaskFailed, match="truncated"):
        _connector(root).list_dump(cut, FORMAT, DumpOptions(workdir=tmp_path))


def test_a_file_that_shrinks_or_grows_while_read_keeps_the_archive_well_formed() -> None:
    shrunk = _Exactly(io.BytesIO(b"abc"), 6)
    assert shrunk.read(4) + shrunk.read() == b"abc\0\0\0"
    grown = _Exactly(io.BytesIO(b"abcdefgh"), 5)
    assert grown.read() == b"abcde" and grown.read() == b""
