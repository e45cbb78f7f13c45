"""Real local servers for fault and delivery tests: a blackhole that accepts and never answers,
an HTTP server that keeps what it is sent, an SMTP server (aiosmtpd), a DuckDB file holder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port that accepts connections and never sends a byte (a target whose
    packets vanish, as far as a client can tell). Yields the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


class Captured(list[dict[str, Any]]):
    """What an HTTP capture server received: method, path, headers, body."""

    port: int
    event: threading.Event

    def alerts(self, *fields: str) -> list[tuple[str, ...]]:
        """These fields of each alert wellkept's JSON webhook delivered, in order."""
        return [tuple(json.loads(hook["body"])["alert"][f] for f in fields) for hook in self]


@contextmanager
def http_capture(port: int = 0) -> Iterator[Captured]:
    received = Captured()
    received.event = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append({"path": self.path, "headers": dict(self.headers),
                             "body": self.rfile.read(length)})
            received.event.set()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    received.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_capture() -> Iterator[tuple[int, list[Any]]]:
    """A real SMTP server on loopback; yields its port and the messages it accepted."""
    from email import message_from_bytes
    from email.policy import default

    from aiosmtpd.controller import Controller

    from tests.helpers import free_port

    messages: list[Any] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            msg = message_from_bytes(envelope.content, policy=default)
            messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos, "msg": msg})
            return "250 OK"

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, messages
    finally:
        controller.stop()


@contextmanager
def duckdb_holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the DuckDB file read-write, as an ingest job would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(300)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()
