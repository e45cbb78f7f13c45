"""`wellkept serve --listen` as a real process: the API beside the coordinator, runs through its
workers, a clean SIGTERM; refusals (non-loopback without a token, a taken port) before binding."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.helpers import Http, auth
from tests.coordinator.helpers import Serve, store_of
from tests.helpers import free_port, run_cli, sql, wait_for
from wellkept.errors import ConfigError
from wellkept.history import coordination
from wellkept.listen import ListenAddress, check_exposure, parse_listen


def test_serve_listen_runs_api_requests_in_the_coordinators_workers(
        api_config: Callable[..., Path], tmp_path: Path) -> None:
    port = free_port()
    cfg = api_config()
    store = store_of(cfg)
    serve = Serve(cfg, "api", "--listen", f"127.0.0.1:{port}")
    try:
        http = Http(f"http://127.0.0.1:{port}")
        http.wait_up()
        serve.wait_leader(store)
        status, started = http.json("POST", "/maintenance/tasks/purge/run", headers=auth())
        assert status == 202, started

        def finished() -> bool:
            code, run = http.json("GET", f"/maintenance/runs/{started['run_id']}")
            return code == 200 and run["finished_at"] is not None

        assert wait_for(finished, 30), serve.text()
        _, run = http.json("GET", f"/maintenance/runs/{started['run_id']}")
        assert (run["status"], run["trigger"]) == ("completed", "api")
        record = store.get_run(started["run_id"])
        assert record is not None and record.pid == serve.pid      # in the serve process
        assert sql(tmp_path / "app.sqlite3",
                   "SELECT count(*) FROM events WHERE kind = 'old'")[0][0] == 0
        _, state = http.json("GET", "/maintenance/status")
        assert state["process"]["leader"] is True
        assert state["coordinator"]["leader"]["pid"] == serve.pid
        code, _, page = http.request("GET", "/maintenance/dashboard")
        assert code == 200 and b"nightly" in page
        code, _, exposition = http.request("GET", "/metrics")
        assert code == 200 and b'wellkept_task_runs_total{kind="cleanup"' in exposition
    finally:
        code = serve.stop()
    assert code == 0, serve.text()
    assert "API and dashboard on 127.0.0.1:" in serve.text()
    with pytest.raises(OSError):                                   # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert coordination.list_coordinators(store)[0].state == "stopped"


@pytest.mark.parametrize("address", ["0.0.0.0:{port}", "[::]:{port}", "192.0.2.10:{port}",
                                     "db.example.com:{port}"])
def test_a_non_loopback_address_without_a_token_refuses_to_start(
        api_config: Callable[..., Path], address: str) -> None:
    port = free_port()
    cfg = api_config(tokens=[])
    proc = run_cli("-c", str(cfg), "serve", "--listen", address.format(port=port), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refusing to serve on" in proc.stderr and "without a token" in proc.stderr
    # refused before anything started: no coordinator registered, no port bound
    assert coordination.list_coordinators(store_of(cfg)) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_api_listen_in_the_config_is_checked_the_same_way(
        api_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = api_config(tokens=[])
    cfg.write_text(cfg.read_text().replace("127.0.0.1:", "0.0.0.0:"), encoding="utf-8")
    proc = run_cli("-c", str(cfg), "serve", timeout=60)
    assert proc.returncode == 2 and "refusing to serve on 0.0.0.0:" in proc.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text('api: {listen: "127.0.0.1"}\n', encoding="utf-8")
    checked = run_cli("-c", str(bad), "check")
    assert checked.returncode == 2
    assert "api.listen: '127.0.0.1' is not HOST:PORT" in checked.stderr


def test_a_taken_port_fails_the_start_before_the_coordinator_runs(
        api_config: Callable[..., Path]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        cfg = api_config()
        proc = run_cli("-c", str(cfg), "serve", "--listen", f"127.0.0.1:{port}", timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
        assert coordination.list_coordinators(store_of(cfg)) == []
    finally:
        holder.close()


@pytest.mark.parametrize(("text", "host", "port", "loopback"), [
    ("127.0.0.1:8000", "127.0.0.1", 8000, True), ("127.8.9.10:80", "127.8.9.10", 80, True),
    ("[::1]:8000", "::1", 8000, True), ("localhost:9000", "localhost", 9000, True),
    ("0.0.0.0:8000", "0.0.0.0", 8000, False), ("[::]:8000", "::", 8000, False),
    ("10.1.2.3:8000", "10.1.2.3", 8000, False), ("api.example.com:443", "api.example.com", 443,
                                                 False),
])
def test_listen_addresses_parse_and_know_loopback(text: str, host: str, port: int,
                                                  loopback: bool) -> None:
    address = parse_listen(text)
    assert (address.host, address.port, address.is_loopback) == (host, port, loopback)
    assert str(address) == text
    check_exposure(address, ["a-token"])                  # with a token: always allowed
    if loopback:
        check_exposure(address, [])
    else:
        with pytest.raises(ConfigError, match="without a token"):
            check_exposure(address, ["", ""])


@pytest.mark.parametrize(("text", "says"), [
    ("8000", "is not HOST:PORT"), (":8000", "is not HOST:PORT"),
    ("127.0.0.1:0", "from 1 to 65535"), ("127.0.0.1:http", "from 1 to 65535"),
    ("::1:8000", "in brackets"), ("[nope]:80", "not an IPv6 address"), ("[::1]", "[IPv6]:PORT"),
])
def test_bad_listen_addresses_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_listen(text)
    assert ListenAddress("0.0.0.0", 80).url == "http://127.0.0.1:80"


def test_the_cli_never_imports_the_web_stack_unless_it_serves(
        api_config: Callable[..., Path]) -> None:
    from tests.test_registry import cli_with_blocked

    web = ("fastapi", "uvicorn", "jinja2", "starlette")
    helped = cli_with_blocked(["--help"], web)
    assert helped.returncode == 0 and "report" in helped.stdout and "dashboard" in helped.stdout
    listed = cli_with_blocked(["-c", str(api_config()), "schedule", "list"], web)
    assert listed.returncode == 0, listed.stderr
    served = cli_with_blocked(["-c", str(api_config()), "serve", "--listen",
                               f"127.0.0.1:{free_port()}"], web)
    assert served.returncode == 1
    assert "pip install 'wellkept[web]'" in served.stderr
