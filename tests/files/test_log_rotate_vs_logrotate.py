"""log_rotate against the real logrotate: the same files, the same directives, the same result.

Each test builds two identical folders, rotates one with logrotate (its own config and state
file in the test's folder) and the other with `wellkept run`, and compares every file name and
content (decompressed). Where a date matters, both states are forced to the same past time.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.files.peers import layout, run_logrotate, seed_logrotate_state, wk
from wellkept.history.store import HistoryStore
from wellkept.rotation import state


def twins(tmp_path: Path, files: dict[str, str], mode: int = 0o640) -> tuple[Path, Path]:
    peer, ours = tmp_path / "peer", tmp_path / "ours"
    for folder in (peer, ours):
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
            os.chmod(folder / name, mode)
    return peer, ours


def config(write_config: Callable[[str], Path], body: str) -> Path:
    return write_config(f"""
        tasks:
          rot:
            kind: log_rotate
        {body}
        """)


def append(folders: tuple[Path, Path], name: str, text: str) -> None:
    for folder in folders:
        with (folder / name).open("a") as fh:
            fh.write(text)


CASES = {
    "size-compress": ("size 10\nrotate 3\ncompress",
                      "size: 10\n            rotate: 3\n            compress: gzip"),
    "size-delaycompress": ("size 10\nrotate 3\ncompress\ndelaycompress",
                           "size: 10\n            rotate: 3\n            compress: gzip\n"
                           "            delaycompress: true"),
    "size-plain-rotate-2": ("size 10\nrotate 2", "size: 10\n            rotate: 2"),
    "copytruncate": ("size 10\nrotate 2\ncopytruncate\ncompress",
                     "size: 10\n            rotate: 2\n            copytruncate: true\n"
                     "            compress: gzip"),
    "rotate-0": ("size 10\nrotate 0", "size: 10\n            rotate: 0"),
    "zstd-notifempty": ("size 0\nrotate 2\nnotifempty\ncompress\ncompresscmd /usr/bin/zstd\n"
                        "compressext .zst\ncompressoptions -q\nuncompresscmd /usr/bin/unzstd",
                        "size: 0\n            rotate: 2\n            notifempty: true\n"
                        "            compress: zstd"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_five_cycles_match_logrotate(case: str, tmp_path: Path,
                                     write_config: Callable[[str], Path]) -> None:
    ours_directives = CASES[case][1]
    peer, ours = twins(tmp_path, {"app.log": "line 0 of the app log\n",
                                  "my app.log": "spaces in the name\n", "small.log": "x\n"})
    cfg = config(write_config, "    paths: ['ours/*.log']\n            " + ours_directives)
    for cycle in range(5):
        # wellkept creates the new log by default, as Debian's /etc/logrotate.conf says
        extra = "" if case == "copytruncate" else "\ncreate"
        proc = run_logrotate(peer, CASES[case][0] + extra,
                             ["app.log", "my app.log", "small.log"])
        assert proc.returncode == 0, proc.stderr
        result = wk(cfg, "rot")
        assert result["status"] == "completed", result
        assert layout(peer) == layout(ours), f"cycle {cycle}"
        append((peer, ours), "app.log", f"cycle {cycle}: more lines\n" * 3)
        append((peer, ours), "my app.log", f"cycle {cycle}\n" * 5)
    names = set(layout(ours))
    expected = {"size-compress": {"app.log.1.gz", "app.log.3.gz"},
                "size-delaycompress": {"app.log.1", "app.log.2.gz"},
                "size-plain-rotate-2": {"app.log.2"},
                "copytruncate": {"app.log.1.gz"},
                "rotate-0": set(),
                "zstd-notifempty": {"app.log.1.zst", "app.log.2.zst"}}[case]
    assert expected <= names, names
    if case == "rotate-0":
        assert not any(".1" in n for n in names)
    if case == "zstd-notifempty":  # rotated once, then empty: notifempty keeps it
        assert {n for n in names if n.startswith("small")} == {"small.log",
                                                                 "small.log.1.zst"}
    else:
        assert (ours / "small.log").stat().st_size == 2  # under size: never rotated
    assert oct((ours / "app.log").stat().st_mode & 0o777) == oct(0o640)  # create keeps mode


DAILY = "daily\nminsize 10\nmaxsize 1k\nnotifempty\nmissingok\nrotate 2\ncreate"


def test_interval_minsize_maxsize_notifempty_missingok(tmp_path: Path,
                                                       write_config: Callable[[str], Path]
                                                       ) -> None:
    files = {"daily.log": "d" * 50, "tiny.log": "t", "big.log": "b" * 5000, "empty.log": ""}
    peer, ours = twins(tmp_path, files)
    yesterday = datetime.now() - timedelta(days=1)
    an_hour_ago = datetime.now() - timedelta(hours=1)
    if an_hour_ago.date() != datetime.now().date():
        an_hour_ago = datetime.now().replace(hour=0, minute=0, second=1)
    stamp = {n: (an_hour_ago if n == "big.log" else yesterday) for n in files}
    seed_logrotate_state(peer, {n: f"{w.year}-{w.month}-{w.day}-{w.hour}:{w.minute}:"
                                   f"{w.second}" for n, w in stamp.items()})
    cfg = config(write_config, """    paths: [ours/daily.log, ours/tiny.log, ours/big.log,
                    ours/empty.log, ours/missing.log]
            interval: daily
            minsize: 10
            maxsize: 1k
            notifempty: true
            missingok: true
            rotate: 2""")
    store = HistoryStore(f"sqlite:///{tmp_path / '.wellkept' / 'state.db'}")
    for name, when in stamp.items():
        state.record(store, os.path.realpath(ours / name), "rot", when.astimezone(UTC))
    store.close()
    proc = run_logrotate(peer, DAILY, [*list(files), "missing.log"])
    assert proc.returncode == 0, proc.stderr
    result = wk(cfg, "rot")
    assert result["status"] == "completed", result
    assert layout(peer) == layout(ours)
    assert set(layout(ours)) == {"daily.log", "daily.log.1", "tiny.log", "big.log",
                                 "big.log.1", "empty.log"}
    reasons = {Path(r["path"]).name: r["reason"] for r in result["details"]["logs"]}
    assert "minsize" in reasons["tiny.log"] and "maxsize" in reasons["big.log"]
    assert "size 0" in reasons["empty.log"]
    # the state now says today: a second run rotates nothing, as logrotate's second run
    again = wk(cfg, "rot")
    assert again["metrics"]["files_processed"] == 0
    proc = run_logrotate(peer, DAILY, list(files))
    assert layout(peer) == layout(ours)


def test_first_sight_is_recorded_not_rotated(tmp_path: Path,
                                             write_config: Callable[[str], Path]) -> None:
    peer, ours = twins(tmp_path, {"app.log": "a" * 100})
    cfg = config(write_config, "    paths: [ours/app.log]\n            interval: daily")
    assert run_logrotate(peer, "daily\ncreate", ["app.log"]).returncode == 0
    assert wk(cfg, "rot")["metrics"]["files_processed"] == 0
    assert layout(peer) == layout(ours) == {"app.log": "a" * 100}


def test_dateext_prunes_the_oldest_and_maxage(tmp_path: Path,
                                              write_config: Callable[[str], Path]) -> None:
    old = {f"app.log-202611{d:02d}.gz": f"day {d}\n" for d in (1, 2, 3)}
    peer, ours = twins(tmp_path, {"app.log": "today's lines\n", "aged.log": "z" * 20,
                                  "aged.log.1": "one\n", "aged.log.2": "two\n"})
    ancient = time.time() - 40 * 86400
    for folder in (peer, ours):
        for name, text in old.items():
            (folder / name).write_bytes(gzip.compress(text.encode()))
        os.utime(folder / "aged.log.2", (ancient, ancient))
    proc = run_logrotate(peer, "size 1\ndateext\nrotate 2\ncompress\ncreate", ["app.log"])
    assert proc.returncode == 0, proc.stderr
    proc = run_logrotate(peer, "size 1\nrotate 5\nmaxage 30\ncreate", ["aged.log"])
    assert proc.returncode == 0, proc.stderr
    cfg = write_config("""
        tasks:
          dated: {kind: log_rotate, paths: [ours/app.log], size: 1, dateext: true, rotate: 2,
                  compress: gzip}
          aged: {kind: log_rotate, paths: [ours/aged.log], size: 1, rotate: 5, maxage: 30d}
        """)
    assert wk(cfg, "dated")["status"] == "completed"
    assert wk(cfg, "aged")["status"] == "completed"
    today = datetime.now().strftime("%Y%m%d")
    assert layout(peer) == layout(ours)
    assert {"app.log-20261103.gz", f"app.log-{today}.gz"} <= set(layout(ours))
    assert "app.log-20261101.gz" not in layout(ours)
    assert set(n for n in layout(ours) if n.startswith("aged")) == {
        "aged.log", "aged.log.1", "aged.log.2"}  # the 40-day-old .2 went, .1 shifted up


TODAY = (datetime.now().isoweekday() % 7, (datetime.now().isoweekday() + 1) % 7)


@pytest.mark.parametrize("interval", ["hourly", "daily", "weekly", f"weekly {TODAY[0]}",
                                      f"weekly {TODAY[1]}", "weekly 7", "monthly", "yearly"])
def test_interval_calendar_matches_logrotate(interval: str, tmp_path: Path,
                                             write_config: Callable[[str], Path]) -> None:
    """One log per forced last-rotation time; both tools decide on each the same way
    (weekly also on today's weekday, tomorrow's, and 7: every seven days)."""
    ages_h = [0.5, 2, 30, 50, 74, 6 * 24 + 1, 8 * 24, 40 * 24, 400 * 24]
    files = {f"age{i}.log": f"{h} hours\n" for i, h in enumerate(ages_h)}
    peer, ours = twins(tmp_path, files)
    now = datetime.now()
    stamps = {n: now - timedelta(hours=h) for n, h in zip(files, ages_h, strict=True)}
    seed_logrotate_state(peer, {n: f"{w.year}-{w.month}-{w.day}-{w.hour}:{w.minute}:"
                                   f"{w.second}" for n, w in stamps.items()})
    store = HistoryStore(f"sqlite:///{tmp_path / '.wellkept' / 'state.db'}")
    for name, when in stamps.items():
        state.record(store, os.path.realpath(ours / name), "rot", when.astimezone(UTC))
    store.close()
    proc = run_logrotate(peer, f"{interval}\nrotate 1\ncreate", list(files))
    assert proc.returncode == 0, proc.stderr
    every, _, day = interval.partition(" ")
    cfg = config(write_config, f"    paths: ['ours/*.log']\n            interval: {every}\n"
                               f"            weekday: {day or 0}\n            rotate: 1")
    result = wk(cfg, "rot")
    assert result["status"] == "completed", result
    assert layout(peer) == layout(ours), interval
