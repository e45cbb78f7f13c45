"""S3Storage against a real S3 API: moto in server mode on 127.0.0.1, reached over HTTP.

Every connection must go to the loopback address; a guard fails any test that tries another
(a stray request to AWS or to the instance metadata service would be a bug and a leak).
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wellkept.backups.s3 import S3Storage
from wellkept.backups.storage import open_storage
from wellkept.errors import ConfigError, TaskFailed

ACCESS_KEY = "AKIAWELLKEPTTEST0000"
SECRET_KEY = "wellkept-test-secret-Zq9vX3LpR7"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
        raise AssertionError(f"a test tried to connect to {address!r}, not the loopback")
    _real_connect(self, address)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, no shared files, no metadata service, loopback only."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def bucket(endpoint: str) -> str:
    import boto3

    name = f"wk-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage(endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(f"s3://{bucket}/backups/prod?endpoint={endpoint}")


def raw_keys(endpoint: str, bucket: str) -> list[str]:
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def round_trip(storage: S3Storage, name: str, payload: bytes) -> None:
    with storage.writer(name) as fh:
        for start in range(0, len(payload), 1 << 20):
            fh.write(payload[start:start + (1 << 20)])
    digest = hashlib.sha256()
    with storage.reader(name) as fh:
        while chunk := fh.read(256 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert storage.size(name) == len(payload)


def test_a_5_mib_payload_round_trips(storage: S3Storage, endpoint: str, bucket: str) -> None:
    name = "app/app-20261122T010203Z-ab12.pgdump.zst"
    round_trip(storage, name, os.urandom(5 << 20))
    assert raw_keys(endpoint, bucket) == [f"backups/prod/{name}"]


def test_a_multipart_upload_round_trips(endpoint: str, bucket: str) -> None:
    # S3's smallest part is 5 MiB: a 5 MiB threshold and 11 MiB make three parts.
    storage = S3Storage(f"s3://{bucket}?endpoint={endpoint}",
                        multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    round_trip(storage, "big.bin", os.urandom(11 << 20))
    assert raw_keys(endpoint, bucket) == ["big.bin"]
    import boto3

    head = boto3.session.Session().client("s3", endpoint_url=endpoint).head_object(
        Bucket=bucket, Key="big.bin")
    assert head["ETag"].endswith('-3"')  # a multipart ETag ends with the part count


def test_the_spool_is_private_and_never_left_behind(
        storage: S3Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    with storage.writer("a/x") as fh:
        assert stat.S_IMODE(os.fstat(fh.fileno()).st_mode) == 0o600
        fh.write(b"x")
    assert list(spool_dir.iterdir()) == []


def test_an_error_in_the_block_uploads_nothing(
        storage: S3Storage, endpoint: str, bucket: str) -> None:
    with pytest.raises(RuntimeError, match="dump died"), storage.writer("app/half.dump") as fh:
        fh.write(os.urandom(1 << 20))
        raise RuntimeError("dump died")
    assert not storage.exists("app/half.dump")
    assert raw_keys(endpoint, bucket) == []


def test_list_is_relative_sorted_and_scoped(endpoint: str, bucket: str) -> None:
    storage = S3Storage(f"s3://{bucket}/pre?endpoint={endpoint}")
    other = S3Storage(f"s3://{bucket}/pre2?endpoint={endpoint}")
    for name in ("db/b.dump", "db/a.dump", "db/deep/er/c.json", "db2/d.dump", "top.json"):
        storage.write_text(name, name)
    other.write_text("db/elsewhere.dump", "no")
    assert storage.list() == ["db/a.dump", "db/b.dump", "db/deep/er/c.json", "db2/d.dump",
                              "top.json"]
    assert storage.list("db") == ["db/a.dump", "db/b.dump", "db/deep/er/c.json"]
    assert storage.list("db/") == storage.list("db")
    assert storage.list("db/deep") == ["db/deep/er/c.json"]
    assert storage.list("nothing") == []
    assert other.list() == ["db/elsewhere.dump"]


def test_list_pages_past_a_thousand_keys(storage: S3Storage, endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    names = [f"many/{i:05d}" for i in range(1005)]
    for name in names:
        client.put_object(Bucket=bucket, Key=f"backups/prod/{name}", Body=b"")
    assert storage.list("many") == names


def test_size_exists_delete_and_text(storage: S3Storage) -> None:
    storage.write_text("app/m.json", '{"ok": "é"}')
    assert storage.exists("app/m.json")
    assert storage.read_text("app/m.json") == '{"ok": "é"}'
    assert storage.size("app/m.json") == len('{"ok": "é"}'.encode())
    storage.delete("app/m.json")
    assert not storage.exists("app/m.json")
    storage.delete("app/m.json")  # deleting what is gone is fine, as for a folder
    assert storage.list() == []


def test_missing_objects_fail_clearly(storage: S3Storage, bucket: str) -> None:
    where = f"s3://{bucket}/backups/prod/app/none.dump"
    with pytest.raises(TaskFailed, match=f"cannot read {where}: no such object"), \
            storage.reader("app/none.dump"):
        pass
    with pytest.raises(TaskFailed, match="no such object"):
        storage.size("app/none.dump")
    with pytest.raises(TaskFailed, match="no such object"):
        storage.read_text("app/none.dump")


def test_a_missing_bucket_fails_the_upload(endpoint: str) -> None:
    storage = S3Storage(f"s3://wk-no-such-bucket/p?endpoint={endpoint}")
    with pytest.raises(TaskFailed, match="cannot upload s3://wk-no-such-bucket/p/x: NoSuchBucket"):
        storage.write_text("x", "x")


def test_names_that_leave_the_prefix_are_refused(storage: S3Storage) -> None:
    for name in ("../x", "a/../../x", "/abs", "a//b", ""):
        with pytest.raises(TaskFailed, match="not a plain relative name"):
            storage.exists(name)


def test_an_unreachable_endpoint_fails_fast_without_secrets() -> None:
    port = free_port()  # closed again: nothing listens there
    storage = S3Storage(f"s3://bucket/p?endpoint=http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(TaskFailed) as failure:
        storage.write_text("app/x.json", "{}")
    with pytest.raises(TaskFailed) as failure_head:
        storage.exists("app/x.json")
    assert time.monotonic() - started < 20
    for exc in (failure.value, failure_head.value):
        message = str(exc)
        assert "s3://bucket/p/app/x.json" in message
        assert "\n" not in message
        assert SECRET_KEY not in message and ACCESS_KEY not in message


def test_open_storage_takes_the_endpoint_from_the_query(endpoint: str, bucket: str) -> None:
    storage = open_storage(f"s3://{bucket}/pre?endpoint={endpoint}", Path("."))
    assert isinstance(storage, S3Storage)
    assert storage.url == f"s3://{bucket}/pre"
    storage.write_text("t/x.json", "hello")
    assert storage.read_text("t/x.json") == "hello"
    assert raw_keys(endpoint, bucket) == ["pre/t/x.json"]


def test_the_endpoint_may_come_from_the_environment(
        endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    storage = S3Storage(f"s3://{bucket}/")
    assert storage.url == f"s3://{bucket}"
    storage.write_text("x", "from env")
    assert storage.read_text("x") == "from env"


@pytest.mark.parametrize("destination", [
    f"s3://{ACCESS_KEY}:{SECRET_KEY}@bucket/p",
    "s3://bucket/p?endpont=http://127.0.0.1:9",
    "s3://bucket/p?endpoint=ftp://127.0.0.1:9",
    f"s3://bucket/p?endpoint=http://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:9",
    "s3:///p",
    "s3://bucket/a/../b",
])
def test_bad_destinations_are_config_errors(destination: str) -> None:
    with pytest.raises(ConfigError) as failure:
        S3Storage(destination)
    assert SECRET_KEY not in str(failure.value)
