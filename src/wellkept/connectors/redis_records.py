"""Redis keys read as records, for `reconcile`: hashes with their fields, sets member by member.

Keys are found with ``SCAN MATCH … TYPE …`` (never ``KEYS``); each SCAN step's hashes are read
in one pipeline of ``HGETALL``; a set is walked with ``SSCAN``, so a set of millions of members
is never read at once. Values are text (UTF-8; undecodable bytes are replaced).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def hashes(client: Any, pattern: str, count: int) -> Iterator[list[tuple[str, dict[str, str]]]]:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count, _type="hash")
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            rows = [(_text(k), {_text(f): _text(v) for f, v in fields.items()})
                    for k, fields in zip(keys, pipe.execute(), strict=True) if fields]
            if rows:
                yield rows
        if cursor == 0:
            return


def set_members(client: Any, pattern: str, count: int) -> Iterator[list[tuple[str, str]]]:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=count, _type="set")
        for key in keys:
            inner = 0
            while True:
                inner, members = client.sscan(key, cursor=inner, count=count)
                if members:
                    yield [(_text(key), _text(m)) for m in members]
                if inner == 0:
                    break
        if cursor == 0:
            return
