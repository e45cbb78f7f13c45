"""consolidate on real Parquet and CSV files, checked by reading the monthly files with DuckDB."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from tests.files.peers import wk
from tests.helpers import run_cli


def parquet(path: Path, rows: list[tuple[str, float, int]]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (symbol VARCHAR, price DOUBLE, volume BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


def rows_of(path: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
        return sorted(con.execute(f"SELECT * FROM {reader}('{path}')").fetchall())
    finally:
        con.close()


def month_data(folder: Path) -> dict[str, list[tuple[str, float, int]]]:
    """Oct 2026: 3 days, day 2 repeating 5 rows of day 1 and one row twice; Nov: 2 days."""
    day1 = [("AAPL", 100.0 + i, i) for i in range(20)]
    day2 = day1[:5] + [("MSFT", 200.0 + i, i) for i in range(10)] + [("MSFT", 200.0, 0)]
    day3 = [("TSLA", 300.0 + i, i) for i in range(7)]
    nov1 = [("AAPL", 110.0, 1), ("AAPL", 111.0, 2)]
    nov2 = [("AAPL", 112.0, 3)]
    files = {"prices-20261001.parquet": day1, "prices-20261002.parquet": day2,
             "prices-20261003.parquet": day3, "prices-20261101.parquet": nov1,
             "prices-20261102.parquet": nov2}
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        parquet(folder / name, rows)
    this_month = date.today().replace(day=1)
    parquet(folder / f"prices-{this_month:%Y%m}01.parquet", [("NOW", 1.0, 1)])
    (folder / "prices-20269999.parquet").write_bytes(b"not a date")
    return files


def config(write_config: Callable[[str], Path], extra: str = "") -> Path:
    return write_config(f"""
        tasks:
          monthly:
            kind: consolidate
            path: data/prices
            pattern: "prices-{{date}}.parquet"
            date_format: "%Y%m%d"
            output: "monthly/prices-{{month}}.parquet"
            order_by: [symbol, price]
            {extra}
        """)


def test_merge_drops_duplicates_and_proves_counts(tmp_path: Path,
                                                  write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "data" / "prices"
    files = month_data(folder)
    cfg = config(write_config)
    preview = wk(cfg, "monthly", "--dry-run")
    assert preview["status"] == "completed", preview
    oct_row = next(m for m in preview["details"]["months"] if m["month"] == "2026-10")
    assert (oct_row["rows_read"], oct_row["duplicates"], oct_row["rows_written"]) == (
        43, 6, 37)
    # what it found and read, and zero for what it did not do (the contract)
    m = preview["metrics"]
    assert (m["files_matched"], m["rows_read"]) == (5, 43 + 3), m
    assert (m["files_processed"], m["months"], m["rows_written"], m["duplicates_dropped"],
            m["bytes_written"]) == (0, 0, 0, 0, 0), m
    assert preview["message"] == ("would merge 5 daily files into 2 monthly files: 46 rows "
                                  "read, 6 duplicates to drop, 40 to write"), preview["message"]
    assert not (folder / "monthly").exists()  # a dry run makes nothing
    assert all((folder / n).exists() for n in files)
    result = wk(cfg, "monthly")
    assert result["status"] == "completed", result
    assert result["metrics"]["months"] == 2 and result["metrics"]["files_deleted"] == 5
    assert result["metrics"]["duplicates_dropped"] == 6
    assert result["metrics"]["rows_written"] == 37 + 3
    october = rows_of(folder / "monthly" / "prices-2026-10.parquet")
    expected = sorted(set(files["prices-20261001.parquet"] + files["prices-20261002.parquet"]
                          + files["prices-20261003.parquet"]))
    assert october == expected
    assert len(rows_of(folder / "monthly" / "prices-2026-11.parquet")) == 3
    assert not any((folder / n).exists() for n in files)
    this_month = date.today().replace(day=1)
    assert (folder / f"prices-{this_month:%Y%m}01.parquet").exists()  # the month goes on
    assert (folder / "prices-20269999.parquet").exists()  # not a date: not touched
    again = wk(cfg, "monthly")
    assert again["metrics"]["months"] == 0 and again["message"].startswith("nothing")


def test_interrupted_after_the_write_is_merged_again_without_double_counting(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "data" / "prices"
    files = month_data(folder)
    cfg = config(write_config, "keep_sources: true")
    first = wk(cfg, "monthly")  # as if killed after the rename, before deleting the sources
    assert first["status"] == "completed"
    assert all((folder / n).exists() for n in files)
    cfg = config(write_config)
    second = wk(cfg, "monthly")
    oct_row = next(m for m in second["details"]["months"] if m["month"] == "2026-10")
    assert oct_row["merged_existing_output"] is True
    assert oct_row["rows_written"] == 37 and oct_row["rows_read"] == 43 + 37
    assert len(rows_of(folder / "monthly" / "prices-2026-10.parquet")) == 37
    assert not any((folder / n).exists() for n in files)


def test_csv_with_spaces_and_a_failing_month_keeps_its_sources(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "exports dir"
    folder.mkdir()
    for day, rows in ((1, [("a", "1"), ("b", "2")]), (2, [("b", "2"), ("c", "3")])):
        with (folder / f"trades 2026-09-0{day}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "qty"])
            writer.writerows(rows)
    cfg = write_config("""
        tasks:
          merge: {kind: consolidate, path: "exports dir", pattern: "trades {date}.csv",
                  output: "trades {month}.csv"}
          bad: {kind: consolidate, path: "exports dir", pattern: "trades {date}.csv",
                output: "trades {month}.csv", order_by: [nope]}
        """)
    failed = wk(cfg, "bad")
    assert failed["status"] == "failed" and "no column 'nope'" in failed["errors"][0]
    assert len(list(folder.iterdir())) == 2
    result = wk(cfg, "merge")
    assert result["status"] == "completed", result
    assert rows_of(folder / "trades 2026-09.csv") == [("a", 1), ("b", 2), ("c", 3)]
    assert sorted(p.name for p in folder.iterdir()) == ["trades 2026-09.csv"]
    shutil.rmtree(folder)


def test_pattern_errors_at_load(write_config: Callable[[str], Path]) -> None:
    cfg = write_config("""
        tasks:
          m: {kind: consolidate, path: d, pattern: "p-{day}.parquet", output: "p.parquet"}
        """)
    proc = run_cli("-c", str(cfg), "check")
    assert proc.returncode == 2
    assert "tasks.m.pattern: 'p-{day}.parquet' must hold the token {date} exactly once" in \
        proc.stderr
    assert "tasks.m.output" in proc.stderr


def test_a_failed_month_is_retried_and_finished_months_are_resumed(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "data" / "prices"
    month_data(folder)
    good = (folder / "prices-20261102.parquet").read_bytes()
    (folder / "prices-20261102.parquet").write_bytes(b"PAR1 damaged in transit")
    cfg = config(write_config, "keep_sources: true")
    first = wk(cfg, "monthly")
    assert first["status"] == "partial_failure", first
    months = {m["month"]: m for m in first["details"]["months"]}
    assert months["2026-10"]["status"] == "merged" and months["2026-11"]["status"] == "failed"
    assert not (folder / "monthly" / "prices-2026-11.parquet").exists()
    assert not list((folder / "monthly").glob(".*wktmp"))
    (folder / "prices-20261102.parquet").write_bytes(good)
    second = wk(cfg, "monthly")
    assert second["status"] == "completed", second
    assert second["details"]["resumed_from"]["run_id"] == first["run_id"]
    months = {m["month"]: m for m in second["details"]["months"]}
    assert months["2026-10"]["status"] == "done before (resumed)"
    assert months["2026-11"]["status"] == "merged"
    assert len(rows_of(folder / "monthly" / "prices-2026-11.parquet")) == 3


def test_csv_values_are_kept_as_written(tmp_path: Path,
                                        write_config: Callable[[str], Path]) -> None:
    """A merge must not rewrite the data it then deletes: trailing zeros, long decimals,
    nanoseconds, time-zone offsets and leading zeros come out exactly as they went in, and
    only rows written exactly alike are duplicates (1.50 and 1.5 are two rows)."""
    folder = tmp_path / "fills"
    folder.mkdir()
    day1 = ["id,zip,px,at",
            "007,01234,1.50,2026-09-01 10:00:00.123456789+02:00",
            "007,01234,1.50,2026-09-01 10:00:00.123456789+02:00",
            "8,00501,1.234567890123456789,2026-09-01T08:00:00Z"]
    day2 = ["id,zip,px,at", "007,01234,1.5,2026-09-01 10:00:00.123456789+02:00",
            '9,10001,"3.10, firm",']
    (folder / "fills-2026-09-01.csv").write_text("\n".join(day1) + "\n")
    (folder / "fills-2026-09-02.csv").write_text("\n".join(day2) + "\n")
    cfg = write_config("""
        tasks:
          merge: {kind: consolidate, path: fills, pattern: "fills-{date}.csv",
                  output: "fills-{month}.csv", order_by: [px]}
        """)
    result = wk(cfg, "merge")
    assert result["status"] == "completed", result
    assert (result["metrics"]["rows_read"], result["metrics"]["duplicates_dropped"]) == (5, 1)
    lines = (folder / "fills-2026-09.csv").read_text().splitlines()
    assert lines == ["id,zip,px,at", day1[3], day2[1], day1[1], day2[2]]  # px sorted as text
    assert sorted(p.name for p in folder.iterdir()) == ["fills-2026-09.csv"]


def test_a_dry_run_with_a_failing_month_is_the_partial_failure_the_run_would_be(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """One month cannot be read, the other would merge: the dry run says what the run would
    end as (a partial failure, not failed), and makes nothing, not even the output folder."""
    folder = tmp_path / "data" / "prices"
    month_data(folder)
    (folder / "prices-20261102.parquet").write_bytes(b"PAR1 damaged in transit")
    cfg = config(write_config)
    preview = wk(cfg, "monthly", "--dry-run")
    assert preview["status"] == "partial_failure", preview
    months = {m["month"]: m for m in preview["details"]["months"]}
    assert months["2026-10"]["status"] == "would merge"
    assert months["2026-11"]["status"] == "failed"
    assert preview["metrics"]["months"] == 0 and preview["metrics"]["files_matched"] == 3
    assert not (folder / "monthly").exists()
    assert wk(cfg, "monthly")["status"] == "partial_failure"


def _csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "qty"])
        writer.writerows(rows)


def test_gzipped_csv_output(tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "t-2026-09-01.csv", [("a", "1"), ("b", "2")])
    _csv(folder / "t-2026-09-02.csv", [("b", "2"), ("c", "3")])
    cfg = write_config("""
        tasks:
          m: {kind: consolidate, path: d, pattern: "t-{date}.csv", output: "m/t-{month}.csv.gz"}
        """)
    result = wk(cfg, "m")
    assert result["status"] == "completed", result
    assert rows_of(folder / "m" / "t-2026-09.csv.gz") == [("a", 1), ("b", 2), ("c", 3)]
    assert sorted(p.name for p in folder.rglob("*")) == ["m", "t-2026-09.csv.gz"]


def test_names_with_wildcards_are_read_as_themselves(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    # DuckDB takes a path holding * ? [ as a glob: p-[a]-… would be read as p-a-… and then
    # deleted unread
    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "p-a-2026-09-01.csv", [("a", "1")])
    _csv(folder / "p-[a]-2026-09-01.csv", [("b", "2")])
    _csv(folder / "p-*-2026-09-02.csv", [("c", "3")])
    _csv(folder / "p-?-2026-09-02.csv", [("d", "4")])
    cfg = write_config("""
        tasks:
          m: {kind: consolidate, path: d, pattern: "p-*{date}.csv", output: "p-{month}.csv"}
        """)
    result = wk(cfg, "m")
    assert result["status"] == "completed", result
    assert rows_of(folder / "p-2026-09.csv") == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert [p.name for p in folder.iterdir()] == ["p-2026-09.csv"]


def test_an_output_named_like_a_daily_file_is_never_deleted(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    # date_format %Y-%m makes sales-2026-09.csv both a daily file and the month's output:
    # it was written, then deleted as its own source
    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "sales-2026-09.csv", [("a", "1"), ("b", "2")])
    cfg = write_config("""
        tasks:
          m: {kind: consolidate, path: d, pattern: "sales-{date}.csv", date_format: "%Y-%m",
              output: "sales-{month}.csv"}
        """)
    result = wk(cfg, "m")
    assert result["status"] == "completed", result
    assert rows_of(folder / "sales-2026-09.csv") == [("a", 1), ("b", 2)]
    assert result["details"]["ignored"] == [
        "sales-2026-09.csv: a monthly output file, not a daily one"]


def test_a_run_stopped_between_months_reports_the_months_it_merged(
        tmp_path: Path, write_config: Callable[[str], Path], monkeypatch: Any) -> None:
    """A time limit (or Ctrl-C, SIGTERM) stops the run between months: the record keeps
    what was merged (a partial failure, incomplete), not a bare failure with no figures, and
    the next run goes on with the rest."""
    import time

    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.tasks.consolidate import Consolidate

    folder = tmp_path / "data" / "prices"
    month_data(folder)
    cfg = config(write_config, "timeout: 1s")
    merge_month = Consolidate._month

    def slow_first(self: Consolidate, *args: Any) -> None:
        merge_month(self, *args)
        monkeypatch.setattr(Consolidate, "_month", merge_month)
        time.sleep(1.5)  # the time limit passes after the first month

    monkeypatch.setattr(Consolidate, "_month", slow_first)
    engine = Engine(load_config(cfg))
    record = engine.run_one(engine.resolve(["monthly"])[0])
    assert str(record.status) == "partial_failure", record.message
    assert record.message.startswith("timed out after 1s: merged 3 daily files")
    assert "stopped before the last month" in record.message
    assert record.details["incomplete"] is True and record.metrics["months"] == 1
    assert (folder / "monthly" / "prices-2026-10.parquet").exists()
    assert not (folder / "monthly" / "prices-2026-11.parquet").exists()
    second = wk(cfg, "monthly")
    assert second["status"] == "completed", second
    assert second["details"]["resumed_from"]["run_id"] == record.run_id
    assert second["metrics"]["months"] == 1
    assert len(rows_of(folder / "monthly" / "prices-2026-11.parquet")) == 3


def _stopped_after_the_first_month(tmp_path: Path, write_config: Callable[[str], Path],
                                   monkeypatch: Any, stop: Callable[[Any], None]) -> Any:
    """Run `monthly` in this process, calling ``stop(ctx)`` once the first month is merged;
    the run's record."""
    from wellkept.config import load_config
    from wellkept.engine import Engine
    from wellkept.tasks.consolidate import Consolidate

    month_data(tmp_path / "data" / "prices")
    cfg = config(write_config)
    merge_month = Consolidate._month

    def then_stop(self: Consolidate, ctx: Any, *args: Any) -> None:
        merge_month(self, ctx, *args)
        stop(ctx)

    monkeypatch.setattr(Consolidate, "_month", then_stop)
    engine = Engine(load_config(cfg))
    return engine.run_one(engine.resolve(["monthly"])[0])


def test_a_run_cancelled_from_elsewhere_is_a_partial_failure_too(
        tmp_path: Path, write_config: Callable[[str], Path], monkeypatch: Any) -> None:
    """A cancellation that no time limit made (the target lock lost to another process) ends
    the same way: a partial failure, incomplete, never `completed` with months left."""
    record = _stopped_after_the_first_month(
        tmp_path, write_config, monkeypatch,
        lambda ctx: ctx.cancel("target lock lost: taken by another process"))
    assert str(record.status) == "partial_failure", record.message
    assert record.details["incomplete"] is True and record.metrics["months"] == 1
    assert record.details["stopped_by"] == "cancelled"


def test_a_shutdown_stops_it_at_a_checkpoint_with_the_months_merged(
        tmp_path: Path, write_config: Callable[[str], Path], monkeypatch: Any) -> None:
    """The coordinator shutting down asks the run to stop at its next checkpoint: the record
    keeps the months merged, where it had no figures at all."""
    record = _stopped_after_the_first_month(
        tmp_path, write_config, monkeypatch,
        lambda ctx: ctx.request_stop("the coordinator is shutting down"))
    assert str(record.status) == "partial_failure", record.message
    assert record.message.endswith("then stopped at a checkpoint (the coordinator is shutting "
                                   "down); recovery resumes from it"), record.message
    assert record.metrics["months"] == 1 and record.metrics["rows_written"] == 37
    assert record.details["stopped_by"] == "stop" and record.details["incomplete"] is True


def test_a_daily_file_removed_after_the_listing_does_not_fail_the_run(
        tmp_path: Path, write_config: Callable[[str], Path], monkeypatch: Any) -> None:
    """Another cleanup may remove a daily file between the folder's listing and its lstat:
    that file is simply not there; the run merges the rest (it crashed before)."""
    import os

    from wellkept.config import load_config
    from wellkept.engine import Engine

    folder = tmp_path / "data" / "prices"
    month_data(folder)
    listdir = os.listdir

    def listed_then_gone(path: Any = ".") -> list[str]:
        names = listdir(path)
        return [*names, "prices-20261005.parquet"] if str(path) == str(folder) else names

    monkeypatch.setattr(os, "listdir", listed_then_gone)
    engine = Engine(load_config(config(write_config)))
    record = engine.run_one(engine.resolve(["monthly"])[0])
    assert str(record.status) == "completed", record.message
    assert record.metrics["months"] == 2


def test_a_daily_file_whose_name_is_not_utf8_is_left_out_not_failing_its_month(
        tmp_path: Path, write_config: Callable[[str], Path]) -> None:
    """The reader takes paths as UTF-8: such a name failed its whole month on every run."""
    import os

    folder = tmp_path / "d"
    folder.mkdir()
    _csv(folder / "p-a-2026-09-01.csv", [("a", "1")])
    bad = folder / os.fsdecode(b"p-\xff-2026-09-02.csv")
    _csv(bad, [("b", "2")])
    cfg = write_config("""
        tasks:
          m: {kind: consolidate, path: d, pattern: "p-*{date}.csv", output: "p-{month}.csv"}
        """)
    result = wk(cfg, "m")
    assert result["status"] == "completed", result
    assert rows_of(folder / "p-2026-09.csv") == [("a", 1)]
    assert bad.exists() and not (folder / "p-a-2026-09-01.csv").exists()
    assert result["details"]["ignored"] == [
        "p-\\xff-2026-09-02.csv: its name is not UTF-8, which the reader cannot open; rename "
        "it to merge it"]
