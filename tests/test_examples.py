"""The examples in examples/ run and do what they say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_resume_after_kill_9(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "resume_after_kill.py"), "--dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"strategy": "resume", "correct": True,
                       "chunks_done_twice": summary["chunks_done_twice"]}
    assert summary["chunks_done_twice"] <= 1
    assert "killed the worker" in done.stdout and "(trigger recovery) ended completed" \
        in done.stdout
