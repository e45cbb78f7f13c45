"""Schemathesis against the OpenAPI document a real `wellkept serve --listen` serves: every
check (no 5xx, responses and status codes and content types as documented, invalid input
rejected with a 4xx), with the token, so the POSTs are exercised too."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.api.helpers import TOKEN, Http
from tests.coordinator.helpers import Serve
from tests.helpers import free_port

#: examples per operation; with the coverage and stateful phases about 700 requests, ~15 s
EXAMPLES = 20
SEED = 20261122


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        api_config: Callable[..., Path], tmp_path: Path) -> None:
    port = free_port()
    cfg = api_config(port=port)
    serve = Serve(cfg, "schemathesis", "--listen", f"127.0.0.1:{port}")
    try:
        Http(f"http://127.0.0.1:{port}").wait_up()
        tool = Path(sys.executable).with_name("schemathesis")
        proc = subprocess.run(
            [str(tool), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all",
             "-H", f"Authorization: Bearer {TOKEN}", "-n", str(EXAMPLES), "--seed", str(SEED),
             "--workers", "1", "--no-color", "--generation-database", "none",
             "--request-timeout", "30", "--report", "junit",
             "--report-junit-path", str(tmp_path / "schemathesis.xml")],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    finally:
        stopped = serve.stop()
    output = proc.stdout + proc.stderr
    (tmp_path / "schemathesis.txt").write_text(output, encoding="utf-8")
    assert proc.returncode == 0, output[-6000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counted, output[-3000:]
    generated, passed = map(int, counted.groups())
    assert generated == passed and generated > 300, output[-3000:]
    assert "Tested: 16" in output                        # every operation of the document
    assert stopped == 0, serve.text()
    assert "Traceback" not in serve.text(), serve.text()[-4000:]
