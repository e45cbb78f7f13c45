"""A long job written with wellkept's Python API, killed with kill -9, resumed from its checkpoint.

    python examples/resume_after_kill.py [--dir FOLDER]

1. ``sum_squares`` is a task kind made of a plain function with ``@wellkept.task``. It adds up
   the squares below ``upto`` in chunks and checkpoints after every chunk.
2. A worker process runs it through the engine (as ``wellkept run`` or ``wellkept serve``
   would), and this script kills that process with SIGKILL halfway: no cleanup code runs, and
   the run's row in the history is left ``running``.
3. ``Recoverer(engine).run()`` (what ``wellkept recover`` and the coordinator do) finds the run
   orphaned, chooses the strategy from its progress and checkpoint (resume, above 25%), and a
   new run with trigger ``recovery`` continues from the last checkpoint.
4. The script checks the total against the closed formula and counts the chunks done twice:
   at most the one the kill cut short.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import wellkept


@wellkept.task(name="sum_squares", recoverable=True, priority=3)
def sum_squares(ctx: Any, upto: int = 1_200_000, chunks: int = 12, pause: float = 0.25,
                log: str = "chunks.log") -> dict[str, Any]:
    """Add up the squares of 0 … upto-1, one chunk at a time, checkpointing after each.

    A resumed run starts at the chunk after the last checkpoint, with the total so far."""
    resumed = ctx.resumed_from["data"] if ctx.resumed_from else {"next": 0, "total": 0}
    first, total = int(resumed["next"]), int(resumed["total"])
    size = upto // chunks
    with open(ctx.resolve_path(log), "a", encoding="utf-8") as out:
        for chunk in range(first, chunks):
            ctx.progress(100.0 * chunk / chunks, "adding", f"chunk {chunk + 1} of {chunks}")
            stop = upto if chunk == chunks - 1 else (chunk + 1) * size
            total += sum(n * n for n in range(chunk * size, stop))
            time.sleep(pause)  # the slow part of a real job: I/O, a remote call …
            out.write(f"{chunk}\n")
            out.flush()
            ctx.checkpoint("chunk", 100.0 * (chunk + 1) / chunks,
                           {"next": chunk + 1, "total": total})
    return {"total": total, "first_chunk": first}  # numbers: the run's metrics


CONFIG = """\
state: sqlite:///state.db
plugins: [resume_after_kill]          # this file: its @wellkept.task functions are kinds
recovery: {lease: 10s}
tasks:
  squares: {kind: sum_squares, upto: 1200000, chunks: 12}
"""


def engine_for(folder: Path) -> wellkept.Engine:
    return wellkept.Engine(wellkept.load_config(folder / "wellkept.yml"))


def worker(folder: Path) -> None:
    """Run the job, as a separate process the demo can kill."""
    engine = engine_for(folder)
    engine.run(engine.resolve(["squares"]))


def demo(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wellkept.yml").write_text(CONFIG, encoding="utf-8")
    (folder / "chunks.log").unlink(missing_ok=True)
    engine = engine_for(folder)

    proc = subprocess.Popen([sys.executable, __file__, "--worker", str(folder)])
    while _chunks_done(folder) < 6 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (killed,) = engine.store.list_runs(task="squares", limit=1)
    print(f"killed the worker (pid {proc.pid}) with SIGKILL after {_chunks_done(folder)} "
          f"of 12 chunks; its run {killed.run_id[:8]} is still '{killed.status}'")

    report = wellkept.Recoverer(engine).run()
    (item,) = report.recovered
    run = item.recovery
    assert run is not None
    info = run.details["recovery"]
    print(f"recovered it: strategy {info['strategy']} ({info['reason']}); the recovery run "
          f"{run.run_id[:8]} (trigger {run.trigger}) ended {run.status}")

    upto = 1_200_000
    expected = (upto - 1) * upto * (2 * upto - 1) // 6
    total = int(run.metrics["total"])
    done = [int(line) for line in (folder / "chunks.log").read_text().split()]
    twice = len(done) - len(set(done))
    print(f"sum of squares below {upto:,}: {total:,} "
          f"({'correct' if total == expected else 'WRONG'}); resumed at chunk "
          f"{run.metrics['first_chunk']}; chunks computed twice: {twice}")
    print(json.dumps({"strategy": info["strategy"], "correct": total == expected,
                      "chunks_done_twice": twice}))
    return 0 if total == expected and twice <= 1 and run.status == "completed" else 1


def _chunks_done(folder: Path) -> int:
    path = folder / "chunks.log"
    return len(path.read_text().split()) if path.exists() else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to work (default: a temporary folder)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    if args.worker:
        worker(args.worker)
        sys.exit(0)
    sys.exit(demo(args.dir or Path(tempfile.mkdtemp(prefix="wellkept-example-"))))
