"""Helpers for the API tests: the token, polling a run, a urllib client for a real server."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

TOKEN = "test-token-5f1e2a"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_finished(get: Callable[[str], Any], run_id: str, seconds: float = 30) -> dict[str, Any]:
    """Poll GET /maintenance/runs/{id} until the run has finished; its RUN object."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = get(f"/maintenance/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["finished_at"]:
            return dict(answer.json())
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish in {seconds}s")


class Http:
    """A tiny client for a real server (urllib: what curl would do)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={**({"Content-Type": "application/json"}
                                                 if data else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, _, raw = self.request(method, path, body, headers)
        return status, json.loads(raw)

    def wait_up(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health/recovery")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.base} did not answer in {seconds}s")
