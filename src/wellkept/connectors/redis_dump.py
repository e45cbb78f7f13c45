"""Redis backups: RDB snapshots taken with ``redis-cli --rdb``, checked with ``redis-check-rdb``
and restored key by key through a private, temporary ``redis-server``.

A dump is the whole server (every logical database), as the server itself would save it. The
password never goes on a command line, where every local user could read it in ``ps``: redis-cli
gets it through ``REDISCLI_AUTH``, and the temporary servers read theirs from a 0600 config file.

A restore does not replace the target's files (it may be a managed Redis we cannot touch). It
loads the RDB into a temporary server on a free loopback port and copies every key with DUMP +
RESTORE (TTL kept, REPLACE), so it works into any Redis we can reach with a client.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from wellkept.connector import DumpInfo, DumpOptions
from wellkept.connectors._drivers import require
from wellkept.errors import TaskFailed
from wellkept.redact import redact

FORMAT = "redis_rdb"
SUFFIX = ".rdb"
CHUNK = 1024 * 1024
#: keys handed to one DUMP pipeline; shrunk for big values so a batch stays near BATCH_BYTES
BATCH_KEYS = 500
BATCH_BYTES = 16 * 1024 * 1024
#: enough logical databases for any RDB we may load (the default is 16; an RDB naming a higher
#: database would stop the temporary server), at a cost of a few hundred bytes each
DATABASES = 1024
_MAGIC = re.compile(rb"^REDIS(\d{4})$")
_SELECT = re.compile(r"^\[offset (\d+)\] Selecting DB ID (\d+)$")
_OPCODE_RESIZEDB = 0xFB
_OPCODE_EOF = 0xFF

#: where a running child process is reported, so the connector can stop it on interrupt
Track = Callable[[subprocess.Popen[bytes] | None], None]


@dataclass(frozen=True)
class Endpoint:
    """What redis-cli needs from a target URL: the secret is kept apart from the arguments."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: bool
    query: dict[str, list[str]]

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        u = urlsplit(url)
        query = parse_qs(u.query)
        db_text = (u.path or "/").lstrip("/") or query.get("db", ["0"])[0]
        try:
            db = int(db_text)
        except ValueError:
            raise TaskFailed(f"the Redis URL names database {db_text!r}, not a number") from None
        return cls(host=u.hostname or "localhost", port=u.port or 6379, db=db,
                   username=unquote(u.username) if u.username else None,
                   password=unquote(u.password) if u.password else None,
                   tls=u.scheme == "rediss", query=query)

    def cli_args(self) -> list[str]:
        """redis-cli's connection arguments; nothing secret (see ``env``)."""
        args = ["-h", self.host, "-p", str(self.port), "-n", str(self.db)]
        if self.username:
            args += ["--user", self.username]
        if self.tls:
            args.append("--tls")
            # redis-py's URL options, spelled as redis-cli's flags
            for option, flag in (("ssl_ca_certs", "--cacert"), ("ssl_certfile", "--cert"),
                                 ("ssl_keyfile", "--key")):
                if option in self.query:
                    args += [flag, self.query[option][0]]
            if self.query.get("ssl_cert_reqs", [""])[0].lower() == "none":
                args.append("--insecure")
        return args

    def env(self) -> dict[str, str]:
        """The environment for redis-cli: the password goes here, never into argv."""
        env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return env


def url_for_db(url: str, db: int) -> str:
    """The same server, another logical database (redis-py lets the URL's db win over
    keyword arguments, so the URL itself is rewritten)."""
    u = urlsplit(url)
    query = "&".join(p for p in u.query.split("&") if p and not p.startswith("db="))
    return urlunsplit((u.scheme, u.netloc, f"/{db}", query, ""))


def keyspace(client: Any) -> dict[str, int]:
    """Keys per logical database, from ``INFO keyspace`` (only databases holding keys)."""
    info = client.info("keyspace")
    counts = {name: int(v.get("keys", 0)) for name, v in info.items()
              if name.startswith("db") and isinstance(v, dict)}
    return {name: n for name, n in sorted(counts.items(), key=lambda kv: int(kv[0][2:])) if n}


def tool(name: str, purpose: str) -> str:
    """The path of a Redis program, or TaskFailed saying which package provides it."""
    found = shutil.which(name)
    if found is None:
        package = "redis-server" if name == "redis-server" else "redis-tools"
        raise TaskFailed(f"{purpose} needs `{name}`, which is not on PATH "
                         f"(Debian/Ubuntu: apt install {package})")
    return found


def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    match = re.search(r"\d+\.\d+\.\d+", out)
    return match.group(0) if match else out.strip()


# --- dump ---------------------------------------------------------------------------------------


def dump(client: Any, url: str, out: BinaryIO, options: DumpOptions, track: Track) -> DumpInfo:
    """Snapshot the whole server with ``redis-cli --rdb`` into the workdir, then copy it out.

    The counts come from ``INFO keyspace`` just before: the server keeps taking writes while
    it forks its snapshot, so they are close, not exact."""
    cli = tool("redis-cli", "A Redis backup")
    endpoint = Endpoint.from_url(url)
    counts = keyspace(client)
    server_version = str(client.info("server").get("redis_version", ""))
    rdb = options.workdir / "dump.rdb"
    output = _run(track, [cli, *endpoint.cli_args(), "--rdb", str(rdb)], env=endpoint.env())
    if not rdb.exists() or rdb.stat().st_size == 0:
        raise TaskFailed(f"redis-cli --rdb wrote no snapshot: {redact(output)}")
    version = _rdb_version(rdb)
    written = 0
    with rdb.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            out.write(chunk)
            written += len(chunk)
    return DumpInfo(format=FORMAT, suffix=SUFFIX, database=f"{endpoint.host}:{endpoint.port}",
                    server_version=server_version, tools={"redis-cli": tool_version(cli)},
                    counts=counts, counts_exact=False,
                    details={"rdb_version": version, "bytes": written,
                             "scope": "every logical database of the server"})


def _run(track: Track, argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run a child to its end, reporting it to ``track`` meanwhile (so it can be stopped);
    return its output, or raise TaskFailed with it."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    track(proc)
    try:
        raw, _ = proc.communicate()
    finally:
        track(None)
        if proc.poll() is None:  # we are leaving on an exception: leave no child behind
            proc.kill()
            proc.wait()
    output = raw.decode(errors="replace").strip()
    if proc.returncode != 0:
        name = Path(argv[0]).name
        reason = "was stopped" if proc.returncode < 0 else f"exited with {proc.returncode}"
        raise TaskFailed(f"{name} {reason}: {redact(output[-2000:])}")
    return output


def _rdb_version(path: Path) -> int:
    with path.open("rb") as fh:
        header = fh.read(9)
    match = _MAGIC.match(header)
    if match is None:
        raise TaskFailed(f"not an RDB file: it starts with {header!r}, not REDIS and a version")
    return int(match.group(1))


# --- list and check -----------------------------------------------------------------------------


def list_dump(source: BinaryIO, fmt: str, options: DumpOptions) -> list[str]:
    """Check an RDB end to end and describe it: version, keys per database.

    The stream is copied to the workdir first, since redis-check-rdb reads a file. Without
    redis-check-rdb only the header and the end-of-file marker can be checked, and the listing
    says so."""
    _check_format(fmt)
    path = _spool(source, options.workdir / "check.rdb")
    version = _rdb_version(path)
    lines = [f"RDB version {version}"]
    checker = shutil.which("redis-check-rdb")
    if checker is None:
        _check_tail(path, version)
        return [*lines, "not fully checked: redis-check-rdb is not installed"]
    result = subprocess.run([checker, str(path)], capture_output=True, text=True, timeout=3600,
                            check=False, stdin=subprocess.DEVNULL)
    report = (result.stdout + result.stderr).splitlines()
    if result.returncode != 0:
        errors = [ln for ln in report if "ERROR" in ln or "additional info" in ln
                  or ("[offset" in ln and "AUX FIELD" not in ln)]
        raise TaskFailed("the RDB file is damaged or truncated: "
                         + "; ".join(e.strip() for e in errors[-4:] or report[-4:]))
    for line in report:
        if "AUX FIELD redis-ver" in line:
            lines.append("written by Redis " + line.split("=", 1)[1].strip().strip("'"))
    lines += _databases(path, report)
    lines += [ln.removeprefix("[info] ") for ln in report if ln.startswith("[info]")]
    return lines


def _check_format(fmt: str) -> None:
    if fmt != FORMAT:
        raise TaskFailed(f"the Redis connector reads {FORMAT} dumps, not {fmt!r}")


def _spool(source: BinaryIO, path: Path) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        while chunk := source.read(CHUNK):
            fh.write(chunk)
    return path


def _check_tail(path: Path, version: int) -> None:
    """Without redis-check-rdb: an RDB (version 5+) ends with the EOF opcode and 8 bytes of
    checksum, so a file cut short almost always ends with something else."""
    size = path.stat().st_size
    tail = 9 if version >= 5 else 1
    if size < 9 + tail:
        raise TaskFailed(f"the RDB file is truncated ({size} bytes)")
    with path.open("rb") as fh:
        fh.seek(size - tail)
        if fh.read(1)[0] != _OPCODE_EOF:
            raise TaskFailed("the RDB file is truncated: it does not end with the EOF marker")


def _databases(path: Path, report: list[str]) -> list[str]:
    """``dbN: K keys`` for each database redis-check-rdb selected; the count is the RESIZEDB
    hint that follows the SELECTDB opcode at the offset it prints (absent in very old RDBs)."""
    lines: list[str] = []
    with path.open("rb") as fh:
        for line in report:
            match = _SELECT.match(line.strip())
            if match is None:
                continue
            fh.seek(int(match.group(1)))
            block = fh.read(19)
            keys = _resize_hint(block)
            lines.append(f"db{match.group(2)}: {keys} keys" if keys is not None
                         else f"db{match.group(2)}")
    return lines


def _resize_hint(block: bytes) -> int | None:
    if len(block) < 2 or block[0] != _OPCODE_RESIZEDB:
        return None
    first = block[1]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F
    if kind == 1 and len(block) >= 3:
        return ((first & 0x3F) << 8) | block[2]
    if first == 0x80 and len(block) >= 6:
        return int.from_bytes(block[2:6], "big")
    if first == 0x81 and len(block) >= 10:
        return int.from_bytes(block[2:10], "big")
    return None


# --- temporary servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def temp_server(folder: Path | None = None, dbfilename: str | None = None, db: int = 0,
                ready_timeout: float = 60.0, track: Track | None = None) -> Iterator[str]:
    """A private redis-server on a free loopback port; yields its URL (with a random
    password, read from a 0600 config file, not argv). It saves nothing, and on exit it is
    stopped and its folder removed (``folder`` itself is left to its owner).

    With ``dbfilename`` it loads that RDB from ``folder`` at start."""
    server = tool("redis-server", "A Redis restore or restore test")
    own = folder is None
    home = Path(tempfile.mkdtemp(prefix="wellkept-redis-")) if folder is None else folder
    password = secrets.token_hex(16)
    try:
        conf = home / "secret.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"requirepass {password}\n")
        for attempt in range(5):
            port = free_port()
            argv = [server, str(conf), "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(home),
                    "--databases", str(DATABASES), "--daemonize", "no",
                    "--logfile", str(home / "redis.log")]
            if dbfilename:
                argv += ["--dbfilename", dbfilename]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            if track is not None:
                track(proc)
            try:
                url = f"redis://:{password}@127.0.0.1:{port}/{db}"
                if _wait_ready(proc, url, ready_timeout, home / "redis.log", retry=attempt < 4):
                    yield url
                    return
            finally:
                if track is not None:
                    track(None)
                _stop(proc)
        raise TaskFailed("could not find a free loopback port for a temporary redis-server")
    finally:
        if own:
            shutil.rmtree(home, ignore_errors=True)
        else:
            with suppress(OSError):
                (home / "secret.conf").unlink()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log: Path,
                retry: bool) -> bool:
    """True once the server answers PING (an RDB is fully loaded by then); False when the
    port was taken meanwhile and ``retry`` allows another; TaskFailed otherwise."""
    redis = require("redis", "redis", "A Redis target")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                text = log.read_text(errors="replace") if log.exists() else ""
                if retry and "Address already in use" in text:
                    return False
                tail = " / ".join(ln.strip() for ln in text.splitlines()[-5:])
                raise TaskFailed(f"the temporary redis-server stopped: {tail}")
            try:
                client.ping()
                return True
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass  # not listening yet, or still loading the RDB
            if time.monotonic() > deadline:
                raise TaskFailed(f"the temporary redis-server was not ready in {timeout:g}s")
            time.sleep(0.05)
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: with --save "" it exits without writing anything
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- restore ------------------------------------------------------------------------------------


def restore(url: str, source: BinaryIO, fmt: str, options: DumpOptions, ready_timeout: float,
            track: Track) -> dict[str, int]:
    """Load an RDB into the server at ``url``: every key of every database, TTLs kept, keys of
    the same name replaced; Redis functions too. Returns the keys copied per database."""
    _check_format(fmt)
    redis = require("redis", "redis", "A Redis target")
    folder = options.workdir / "restore"
    folder.mkdir(mode=0o700)
    _spool(source, folder / "dump.rdb")
    _rdb_version(folder / "dump.rdb")
    copied: dict[str, int] = {}
    with temp_server(folder, "dump.rdb", ready_timeout=ready_timeout, track=track) as temp:
        (folder / "dump.rdb").unlink()  # loaded: the server holds it in memory now
        src = redis.Redis.from_url(temp)
        try:
            for name in keyspace(src):
                db = int(name[2:])
                copied[name] = _copy_db(redis, url_for_db(temp, db), url_for_db(url, db))
            _copy_functions(redis, src, url)
        finally:
            src.close()
    return copied


def _copy_db(redis: Any, from_url: str, to_url: str) -> int:
    src = redis.Redis.from_url(from_url)
    dst = redis.Redis.from_url(to_url)
    copied, per_batch = 0, BATCH_KEYS
    try:
        cursor = 0
        while True:
            cursor, keys = src.scan(cursor=cursor, count=per_batch)
            start = 0
            while start < len(keys):
                batch = keys[start:start + per_batch]
                start += len(batch)
                n, size = _copy_batch(src, dst, batch)
                copied += n
                # big values: fewer keys per batch, so one batch's payloads stay in memory
                per_batch = max(1, min(BATCH_KEYS, BATCH_BYTES * len(batch) // max(size, 1)))
            if cursor == 0:
                return copied
    finally:
        src.close()
        dst.close()


def _copy_batch(src: Any, dst: Any, keys: list[bytes]) -> tuple[int, int]:
    """DUMP + PTTL a batch from the temporary server, RESTORE it into the target; returns
    the keys restored and their payload bytes."""
    read = src.pipeline(transaction=False)
    for key in keys:
        read.dump(key)
        read.pttl(key)
    replies = read.execute()
    write = dst.pipeline(transaction=False)
    restored = size = 0
    for i, key in enumerate(keys):
        payload, ttl = replies[2 * i], replies[2 * i + 1]
        if payload is None or ttl == -2:
            continue  # expired since the SCAN
        write.restore(key, max(int(ttl), 0), payload, replace=True)
        restored += 1
        size += len(payload)
    if restored:
        write.execute()
    return restored, size


def _copy_functions(redis: Any, src: Any, url: str) -> None:
    """Redis 7 functions live in the RDB too, outside every database; copy them when the
    snapshot has any (a target without functions support then fails loudly)."""
    try:
        libraries = src.function_list()
    except redis.ResponseError:
        return  # a server without FUNCTION: the RDB cannot hold functions either
    if not libraries:
        return
    payload = src.function_dump()
    dst = redis.Redis.from_url(url)
    try:
        dst.function_restore(payload, policy="REPLACE")
    finally:
        dst.close()


# --- checks after a restore ---------------------------------------------------------------------


def smoke(client: Any, query: str) -> Any:
    """Run one Redis command given as text (``GET "a key"``); bytes come back as text."""
    import shlex

    try:
        words = shlex.split(query)
    except ValueError as exc:
        raise TaskFailed(f"cannot parse the command {query!r}: {exc}") from None
    if not words:
        raise TaskFailed("the smoke command is empty")
    return _text(client.execute_command(*words))


def _text(reply: Any) -> Any:
    if isinstance(reply, bytes):
        return reply.decode(errors="replace")
    if isinstance(reply, list | tuple):
        return [_text(r) for r in reply]
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    return reply
