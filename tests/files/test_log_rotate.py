"""log_rotate on its own: dry run, hostile paths, copytruncate's warning, config errors."""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.files.peers import layout, wk
from tests.helpers import run_cli, tmpfs, wait_for, wellkept_bin
from wellkept.history.store import HistoryStore
from wellkept.rotation import state


def test_dry_run_reports_every_step_and_changes_nothing(tmp_path: Path,
                                                        write_config: Callable[[str], Path]
                                                        ) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("a" * 4000)
    (logs / "app.log.1.gz").write_bytes(gzip.compress(b"old"))
    (logs / "app.log.2.gz").write_bytes(gzip.compress(b"older"))
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/app.log], size: 1k, rotate: 2, compress: gzip}
        """)
    before = layout(logs)
    result = wk(cfg, "rot", "--dry-run")
    assert result["status"] == "completed" and result["dry_run"] is True
    assert layout(logs) == before
    steps = result["details"]["logs"][0]["steps"]
    assert [(s["op"], s["name"], s.get("to")) for s in steps] == [
        ("delete", "app.log.2.gz", None), ("rename", "app.log.1.gz", "app.log.2.gz"),
        ("rotate", "app.log", "app.log.1"), ("compress", "app.log.1", "app.log.1.gz")]
    assert steps[0]["bytes"] == (logs / "app.log.2.gz").stat().st_size
    assert steps[2]["bytes"] == 4000
    # the contract: a dry run reports what it found, and zero for what it did not do
    assert result["metrics"]["files_due"] == 1
    assert result["metrics"]["files_processed"] == 0 and result["metrics"]["bytes_freed"] == 0
    assert result["metrics"]["files_deleted"] == 0 and result["metrics"]["files_compressed"] == 0
    assert result["details"]["would"] == {"files_deleted": 1, "files_compressed": 1}
    assert result["message"].startswith("would rotate 1 of 1 log")
    store = HistoryStore(f"sqlite:///{tmp_path / '.wellkept' / 'state.db'}")
    assert state.last_rotated(store, [str(logs / "app.log")]) == {}
    real = wk(cfg, "rot")
    assert set(layout(logs)) == {"app.log", "app.log.1.gz", "app.log.2.gz"}
    assert layout(logs)["app.log.1.gz"] == "a" * 4000
    assert real["metrics"]["bytes_freed"] >= 4000 - 100
    assert str(logs / "app.log") in state.last_rotated(store, [str(logs / "app.log")])
    store.close()


def test_symlinks_and_hostile_names(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.log").write_text("s" * 100)
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink(outside / "secret.log", logs / "link.log")
    (logs / "new\nline.log").write_text("n" * 100)
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: ["logs/*.log"], size: 10, rotate: 1}
        """)
    result = wk(cfg, "rot")
    assert result["status"] == "completed", result
    assert (outside / "secret.log").read_text() == "s" * 100
    assert sorted(os.listdir(outside)) == ["secret.log"]
    assert os.path.islink(logs / "link.log")
    assert (logs / "new\nline.log.1").read_text() == "n" * 100
    skipped = [r for r in result["details"]["logs"] if r["action"] == "skipped"]
    assert skipped and "symlink" in skipped[0]["reason"]


def test_copytruncate_warns_and_keeps_the_inode(tmp_path: Path,
                                                write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("line\n" * 100)
    inode = (logs / "app.log").stat().st_ino
    with (logs / "app.log").open("a") as writer:  # a program holding its log open
        cfg = write_config("""
            tasks:
              rot: {kind: log_rotate, paths: [logs/app.log], size: 1, copytruncate: true}
            """)
        result = wk(cfg, "rot")
        writer.write("after the truncate\n")
    assert (logs / "app.log").stat().st_ino == inode
    assert (logs / "app.log.1").read_text() == "line\n" * 100
    assert (logs / "app.log").read_bytes().lstrip(b"\0") == b"after the truncate\n"
    assert "lost" in result["details"]["warnings"][0]
    assert result["details"]["logs"][0]["copytruncate_window_ms"] >= 0


def test_missing_log_fails_and_config_errors_name_the_key(tmp_path: Path,
                                                         write_config: Callable[[str], Path]
                                                         ) -> None:
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/none.log], interval: daily}
        """)
    result = wk(cfg, "rot")
    assert result["status"] == "failed" and "no such file" in result["errors"][0]
    # the message names what failed, since the text output shows no `errors`
    missing = tmp_path / "logs" / "none.log"
    assert result["message"] == f"no log due: 0 logs checked; 1 error: {missing}: no such file"
    proc = run_cli("-c", str(cfg), "run", "rot")
    assert proc.returncode == 1 and f"{missing}: no such file" in proc.stdout, proc.stdout
    bad = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/a.log], size: 10M, minsize: 1M, compress: lz4}
        """, name="bad.yml")
    proc = run_cli("-c", str(bad), "check")
    assert proc.returncode == 2
    expected = "tasks.rot.compress: 'lz4' is not allowed; choose one of: 'gzip' or 'zstd'"
    assert expected in proc.stderr


def test_app_logs_preset_and_keys_that_override_it(tmp_path: Path,
                                                    write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "big.log").write_bytes(b"x" * (100 * 1024 * 1024 + 1))
    (logs / "small.log").write_text("y" * 2000)
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, preset: app_logs, paths: [logs/big.log, logs/gone.log]}
          low: {kind: log_rotate, preset: app_logs, paths: [logs/small.log], size: 1k}
        """)
    result = wk(cfg, "rot")  # a missing log is fine (missingok), the 100M one rotates
    assert result["status"] == "completed", result
    assert set(os.listdir(logs)) == {"big.log", "big.log.1.gz", "small.log"}
    assert (logs / "big.log").stat().st_size == 0
    with gzip.open(logs / "big.log.1.gz") as fh:
        assert len(fh.read()) == 100 * 1024 * 1024 + 1
    assert wk(cfg, "low")["status"] == "completed"  # size given beside the preset wins
    assert (logs / "small.log.1.gz").exists()


def test_a_run_killed_while_compressing_does_not_block_later_rotations(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    first = b"".join(b"line %d %s\n" % (i, os.urandom(8).hex().encode())
                     for i in range(600_000))
    (logs / "app.log").write_bytes(first)
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/app.log], size: 1k, rotate: 3, compress: gzip,
                compresslevel: 9}
        """)
    run = subprocess.Popen([wellkept_bin(), "-c", str(cfg), "run", "rot"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (logs / ".app.log.1.gz.wktmp").exists(), 60)
    finally:
        run.kill()
        run.wait()
    assert set(os.listdir(logs)) == {"app.log", "app.log.1", ".app.log.1.gz.wktmp"}
    (logs / "app.log").write_text("second\n" * 300)
    result = wk(cfg, "rot")
    # the rotation the kill left uncompressed is compressed first, then shifted; the
    # half-written temporary file is gone
    assert result["status"] == "completed", result
    assert layout(logs) == {"app.log": "", "app.log.1.gz": "second\n" * 300,
                            "app.log.2.gz": first.decode()}
    steps = result["details"]["logs"][0]["steps"]
    assert steps[0] == {"op": "compress", "name": "app.log.1", "to": "app.log.1.gz",
                        "bytes": len(first), "reason": "left uncompressed by an interrupted run"}


def test_copytruncate_on_a_full_disk_keeps_every_line(tmp_path: Path,
                                                      write_config: Callable[[str], Path]
                                                      ) -> None:
    lines = b"".join(b"line %06d\n" % i for i in range(60_000))  # 720,000 bytes
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [mnt/app.log], size: 1k, copytruncate: true}
        """)
    with tmpfs(tmp_path / "mnt", "size=2m") as mnt:
        (mnt / "app.log").write_bytes(lines)
        (mnt / "filler").write_bytes(b"\0" * 1_000_000)  # about 370k left: half a copy
        result = wk(cfg, "rot")
        # the copy was cut short by the full disk: the log is not truncated and no partial
        # app.log.1 is left to pass for a rotation
        assert result["status"] == "failed", result
        assert "No space left on device" in result["errors"][0]
        assert (mnt / "app.log").read_bytes() == lines
        assert sorted(os.listdir(mnt)) == ["app.log", "filler"]
        (mnt / "filler").unlink()
        assert wk(cfg, "rot")["status"] == "completed"
        assert (mnt / "app.log.1").read_bytes() == lines
        assert (mnt / "app.log").stat().st_size == 0


def test_a_log_whose_name_is_not_utf8(tmp_path: Path,
                                      write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.log").write_text("g" * 100)
    bad = os.fsdecode(b"bad\xff.log")
    (logs / bad).write_text("b" * 100)
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: ["logs/*.log"], size: 10, rotate: 2}
          daily: {kind: log_rotate, paths: ["logs/*.log"], interval: daily}
        """)
    # its path could not be stored as the state's key: the run crashed before rotating any log
    result = wk(cfg, "rot")
    assert result["status"] == "completed", result
    assert (logs / "good.log.1").read_text() == "g" * 100
    assert (logs / f"{bad}.1").read_text() == "b" * 100
    store = HistoryStore(f"sqlite:///{tmp_path / '.wellkept' / 'state.db'}")
    assert set(state.last_rotated(store, [str(logs / bad), str(logs / "good.log")])) == {
        str(logs / bad), str(logs / "good.log")}
    store.close()
    assert wk(cfg, "daily")["status"] == "completed"
    proc = run_cli("-c", str(cfg), "run", "rot")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_rotation_whose_compression_fails_still_counts_and_is_not_repeated(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """The log was moved aside, then its compression ran out of disk: that log has rotated.
    The run says so (and names the error), and a daily log is not rotated again that day."""
    data = os.urandom(1_500_000)  # incompressible: the .gz needs as much room again
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [mnt/app.log], interval: daily, compress: gzip,
                rotate: 3}
        """)
    with tmpfs(tmp_path / "mnt", "size=2m") as mnt:
        (mnt / "app.log").write_bytes(b"seen")
        assert wk(cfg, "rot")["metrics"]["files_processed"] == 0  # first seen: recorded
        # a day later (the state is moved back), the log is due
        from datetime import timedelta

        from wellkept.records import utcnow

        store = HistoryStore(f"sqlite:///{tmp_path / '.wellkept' / 'state.db'}")
        state.record(store, os.path.realpath(mnt / "app.log"), "rot",
                     utcnow() - timedelta(days=2))
        (mnt / "app.log").write_bytes(data)
        result = wk(cfg, "rot")
        assert result["status"] == "partial_failure", result
        assert result["message"].startswith("rotated 1 of 1 log"), result["message"]
        assert "No space left on device" in result["errors"][0]
        assert (mnt / "app.log.1").read_bytes() == data  # kept whole, uncompressed
        assert (mnt / "app.log").stat().st_size == 0
        again = wk(cfg, "rot")
        assert again["metrics"]["files_processed"] == 0, again  # not due again today
        assert (mnt / "app.log.1").read_bytes() == data


def test_a_run_killed_before_removing_a_compressed_source_keeps_the_rotation_once(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """Killed after putting app.log.1.gz in place, before removing app.log.1: the next run
    removes the source once the copy is checked, and keeps that rotation once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("new\n" * 500)
    (logs / "app.log.1").write_text("old\n" * 500)
    (logs / "app.log.1.gz").write_bytes(gzip.compress(b"old\n" * 500))
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/app.log], size: 1k, rotate: 3, compress: gzip}
        """)
    dry = wk(cfg, "rot", "--dry-run")
    assert dry["details"]["would"]["files_deleted"] == 1
    result = wk(cfg, "rot")
    assert result["status"] == "completed", result
    assert layout(logs) == {"app.log": "", "app.log.1.gz": "new\n" * 500,
                            "app.log.2.gz": "old\n" * 500}
    steps = result["details"]["logs"][0]["steps"]
    assert steps[0] == {"op": "discard", "name": "app.log.1", "to": "app.log.1.gz",
                        "bytes": 2000, "reason": "compressed by an interrupted run"}


def test_a_rotation_beside_a_different_compressed_copy_is_left_alone(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("new\n" * 500)
    (logs / "app.log.1").write_text("old\n" * 500)
    (logs / "app.log.1.gz").write_bytes(gzip.compress(b"old\n" * 499))  # one line short
    cfg = write_config("""
        tasks:
          rot: {kind: log_rotate, paths: [logs/app.log], size: 1k, rotate: 3, compress: gzip}
        """)
    before = layout(logs)
    result = wk(cfg, "rot")
    assert result["status"] == "failed"
    assert "'app.log.1' and 'app.log.1.gz' both exist and differ" in result["errors"][0]
    assert layout(logs) == before


def test_holds_same_reads_both_formats_and_rejects_a_damaged_copy(tmp_path: Path) -> None:
    from wellkept.fs.compress import compress_at, holds_same

    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk, and not a whole one
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for method, ext in (("gzip", ".gz"), ("zstd", ".zst")):
            (tmp_path / "a.log").write_bytes(data)
            compress_at(fd, "a.log", method, keep_source=True)  # type: ignore[arg-type]
            assert holds_same(fd, "a.log", method)  # type: ignore[arg-type]
            packed = (tmp_path / f"a.log{ext}").read_bytes()
            (tmp_path / f"a.log{ext}").write_bytes(packed[:-40])  # cut short
            assert not holds_same(fd, "a.log", method)  # type: ignore[arg-type]
            (tmp_path / f"a.log{ext}").write_bytes(packed)
            (tmp_path / "a.log").write_bytes(data + b"x")  # the source grew since
            assert not holds_same(fd, "a.log", method)  # type: ignore[arg-type]
            (tmp_path / f"a.log{ext}").unlink()
    finally:
        os.close(fd)
