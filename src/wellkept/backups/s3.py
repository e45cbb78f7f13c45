"""S3-compatible object storage for backups: ``s3://bucket/prefix[?endpoint=URL]``.

An object must appear under its final key only when it is whole, as with ``LocalStorage``.
S3 gives that for free once an upload completes, so the writer spools to a private temporary
file and uploads only when the ``with`` block ends cleanly; a failed block uploads nothing.
Spooling also lets the upload know its size, so multipart part sizes fit S3's 10,000-part cap.

Credentials come only from boto3's own chain (environment, shared files, instance roles);
they never appear in ``url``, in messages or in logs. The endpoint comes from boto3's
``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` or from the ``endpoint`` query of the URL.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, urlsplit

from wellkept.errors import ConfigError, MissingDependency, TaskFailed
from wellkept.redact import redact

#: Short network limits: an unreachable endpoint must fail a backup in seconds, not hang it.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
MAX_ATTEMPTS = 3  # in botocore's "standard" mode this counts the first attempt too
MULTIPART_THRESHOLD = 16 << 20
MULTIPART_CHUNKSIZE = 16 << 20
MAX_CONCURRENCY = 4  # parts in flight; each holds a chunk in memory while it is sent
SPOOL_BUFFER = 1 << 20
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Storage:
    """A bucket and key prefix on AWS S3 or any S3-compatible server (MinIO, Ceph, R2...)."""

    def __init__(self, destination: str, *, multipart_threshold: int = MULTIPART_THRESHOLD,
                 multipart_chunksize: int = MULTIPART_CHUNKSIZE) -> None:
        self.bucket, self.prefix, endpoint = _parse(destination)
        self.url = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        # what reopens this storage later (verify, restore, retention): with its endpoint,
        # or a backup on a private server would be looked for on AWS
        self.location = self.url + (f"?endpoint={endpoint}" if endpoint else "")
        try:
            import boto3
            import boto3.exceptions
            import botocore.exceptions
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ModuleNotFoundError:
            raise MissingDependency("boto3", "s3", "S3 backup storage") from None
        config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
        # A session of our own: boto3's default session is not safe to share across threads.
        session = boto3.session.Session()
        # endpoint_url=None lets boto3 apply AWS_ENDPOINT_URL(_S3) and the shared config.
        self._client: Any = session.client("s3", endpoint_url=endpoint, config=config)
        self._transfer: Any = TransferConfig(multipart_threshold=multipart_threshold,
                                             multipart_chunksize=multipart_chunksize,
                                             max_concurrency=MAX_CONCURRENCY)
        self._client_error: type[Exception] = botocore.exceptions.ClientError
        self._errors: tuple[type[Exception], ...] = (
            botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
            boto3.exceptions.Boto3Error)

    def _key(self, name: str) -> str:
        # S3 keys are literal strings: "a/../b" would not mean "b" as it does in a folder.
        # Refusing such names keeps one name mapping to one object on every storage.
        parts = name.split("/")
        if not name or any(part in ("", ".", "..") for part in parts):
            raise TaskFailed(f"backup name {name!r} is not a plain relative name")
        return f"{self.prefix}/{name}" if self.prefix else name

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _failed(self, action: str, key: str, exc: Exception) -> TaskFailed:
        return TaskFailed(f"cannot {action} {self._where(key)}: {self._reason(exc)}")

    def _reason(self, exc: Exception) -> str:
        if isinstance(exc, self._client_error):
            error = cast(Any, exc).response.get("Error", {})
            code = str(error.get("Code", "")) or "error"
            if code in _MISSING_CODES:
                return "no such object"
            message = str(error.get("Message", "")) or str(exc)
            reason = f"{code}: {message}"
        else:
            reason = str(exc) or type(exc).__name__
        # One line for the history and alerts; redact() in case a server echoes a secret.
        return redact(re.sub(r"\s+", " ", reason).strip())

    def _is_missing(self, exc: Exception) -> bool:
        if not isinstance(exc, self._client_error):
            return False
        return str(cast(Any, exc).response.get("Error", {}).get("Code", "")) in _MISSING_CODES

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        key = self._key(name)
        try:
            # Mode 0600, and on Linux an unnamed file: nothing is left behind even by a crash.
            # Opened here, not in the with below, so that only its own OSError is caught.
            spool = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="wellkept-s3-", buffering=SPOOL_BUFFER)
        except OSError as exc:
            raise TaskFailed(f"cannot create a spool file for {self._where(key)}: "
                             f"{exc.strerror or exc}") from None
        with spool:
            try:
                yield cast(BinaryIO, spool)
                spool.flush()
                spool.seek(0)
            except OSError as exc:  # the spool's disk is full, as LocalStorage reports it
                raise TaskFailed(f"cannot spool {self._where(key)} in "
                                 f"{tempfile.gettempdir()}: {exc.strerror or exc}") from None
            try:
                self._client.upload_fileobj(spool, self.bucket, key, Config=self._transfer)
            except self._errors as exc:
                raise self._failed("upload", key, exc) from None

    def write_text(self, name: str, text: str) -> None:
        with self.writer(name) as fh:
            fh.write(text.encode())

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[BinaryIO]:
        key = self._key(name)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            raise self._failed("read", key, exc) from None
        body = response["Body"]
        # A buffered reader gives consumers the whole file API (readinto, read1...), which
        # the bare streaming body lacks.
        with io.BufferedReader(_BodyReader(body), buffer_size=SPOOL_BUFFER) as fh:
            try:
                yield cast(BinaryIO, fh)
            except self._errors as exc:  # the stream broke or timed out mid-read
                raise self._failed("read", key, exc) from None

    def read_text(self, name: str) -> str:
        with self.reader(name) as fh:
            return fh.read().decode()

    def list(self, prefix: str = "") -> list[str]:
        prefix = prefix.strip("/")
        if prefix:
            self._key(prefix)  # the same rule as names
        root = f"{self.prefix}/" if self.prefix else ""
        # A trailing "/" so that "app" lists app/... but not app2/..., as a folder would.
        search = f"{root}{prefix}/" if prefix else root
        names: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=search)
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(root):]
                    if _listed(name):
                        names.append(name)
        except self._errors as exc:
            raise self._failed("list", search, exc) from None
        return sorted(names)

    def size(self, name: str) -> int:
        key = self._key(name)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            raise self._failed("stat", key, exc) from None
        return int(head["ContentLength"])

    def exists(self, name: str) -> bool:
        key = self._key(name)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            if self._is_missing(exc):
                return False
            raise self._failed("check", key, exc) from None
        return True

    def delete(self, name: str) -> None:
        key = self._key(name)
        try:
            # Deleting a missing key succeeds, like LocalStorage's unlink(missing_ok=True).
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            raise self._failed("delete", key, exc) from None


    def sweep(self, prefix: str, idle_seconds: float) -> builtins.list[str]:
        """Nothing to sweep: uploads are spooled in unnamed files, and an object exists only
        once its upload completed."""
        return []


def _listed(name: str) -> bool:
    """Folder markers ("a/") and hidden names are skipped: LocalStorage never lists them."""
    return bool(name) and not name.endswith("/") and not name.rsplit("/", 1)[-1].startswith(".")


class _BodyReader(io.RawIOBase):
    """botocore's streaming body as a raw stream, so ``io.BufferedReader`` can wrap it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _parse(destination: str) -> tuple[str, str, str | None]:
    """Bucket, key prefix and endpoint of ``s3://bucket/prefix[?endpoint=URL]``."""
    parts = urlsplit(destination)
    # Never echo a netloc with "@" in it: it may hold an access key and secret.
    if "@" in parts.netloc:
        raise ConfigError("an s3:// destination must not hold credentials; "
                          "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
    bucket = parts.netloc
    if not bucket or ":" in bucket:
        raise ConfigError(f"{destination!r} is not s3://bucket/prefix (a bucket, no port; "
                          "set the server with ?endpoint=URL or AWS_ENDPOINT_URL_S3)")
    endpoint: str | None = None
    # Refuse unknown options: a mistyped "endpoint" would silently send backups to AWS.
    for option, value in parse_qsl(parts.query, keep_blank_values=True):
        if option != "endpoint" or endpoint is not None:
            raise ConfigError(f"s3://{bucket}: unknown or repeated option {option!r} "
                              "(the only option is endpoint=URL)")
        endpoint = _check_endpoint(bucket, value)
    if parts.fragment:
        raise ConfigError(f"s3://{bucket}: a destination has no #fragment")
    prefix = parts.path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"s3://{bucket}: the prefix {prefix!r} is not a plain path")
    return bucket, prefix, endpoint


def _check_endpoint(bucket: str, value: str) -> str:
    endpoint = urlsplit(value)
    if "@" in endpoint.netloc:
        raise ConfigError(f"s3://{bucket}: the endpoint must not hold credentials")
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        raise ConfigError(f"s3://{bucket}: the endpoint {value!r} is not an http(s):// URL")
    return value
