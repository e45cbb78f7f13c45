"""Each side of a reconciliation as a stream of records (dicts of text or typed values).

An SQL side is the user's query through the target's ``QueryReader`` (read-only, streamed).
A Redis side is every hash whose key matches ``pattern`` (its fields are the record; fields
named in ``key_from_name`` come from the key's name: ``positions:{account}:{symbol}``), or
every member of the sets matching ``pattern`` (the member is the field ``member_as``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from wellkept.connector import Connector, QueryReader, RecordScanner
from wellkept.errors import TaskFailed

Record = dict[str, Any]

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def name_regex(template: str) -> re.Pattern[str]:
    """``positions:{account}:{symbol}`` -> a regex with one named group per field."""
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos:m.start()]).replace(r"\*", ".*"))
        out.append(f"(?P<{m.group(1)}>.+?)")
        pos = m.end()
    out.append(re.escape(template[pos:]).replace(r"\*", ".*"))
    return re.compile("".join(out), re.DOTALL)


def template_fields(template: str) -> list[str]:
    return _FIELD.findall(template)


def records(connector: Connector, spec: Any, batch_size: int
            ) -> AbstractContextManager[Iterator[list[Record]]]:
    """Batches of records from one side (``spec`` is the task's Source parameters)."""
    if spec.query is not None:
        if not isinstance(connector, QueryReader):
            raise TaskFailed(f"target {spec.target!r} ({connector.name}) cannot run queries")
        return _query(connector, spec, batch_size)
    if not isinstance(connector, RecordScanner):
        raise TaskFailed(f"target {spec.target!r} ({connector.name}) has no keys to scan as "
                         "hashes or sets")
    return _keys(connector, spec, batch_size)


def _renamed(record: Record, rename: dict[str, str]) -> Record:
    return {rename.get(k, k): v for k, v in record.items()} if rename else record


@contextmanager
def _query(connector: QueryReader, spec: Any, batch_size: int
           ) -> Iterator[Iterator[list[Record]]]:
    with connector.read_query(spec.query, batch_size) as stream:
        columns = stream.columns

        def batches() -> Iterator[list[Record]]:
            for batch in stream.batches:
                yield [_renamed(dict(zip(columns, row, strict=True)), spec.rename)
                       for row in batch]

        yield batches()


@contextmanager
def _keys(connector: RecordScanner, spec: Any, batch_size: int
          ) -> Iterator[Iterator[list[Record]]]:
    regex = name_regex(spec.key_from_name) if spec.key_from_name else None

    def from_name(key: str) -> Record | None:
        if regex is None:
            return {"_key": key}
        m = regex.fullmatch(key)
        return m.groupdict() if m else None

    def batches() -> Iterator[list[Record]]:
        if spec.redis == "hash":
            for batch in connector.scan_hashes(spec.pattern, batch_size):
                out = []
                for key, fields in batch:
                    named = from_name(key)
                    if named is not None:
                        out.append(_renamed({**fields, **named}, spec.rename))
                yield out
        else:
            for members in connector.scan_set_members(spec.pattern, batch_size):
                out = []
                for key, member in members:
                    named = from_name(key)
                    if named is not None:
                        out.append(_renamed({**named, spec.member_as: member}, spec.rename))
                yield out

    yield batches()
