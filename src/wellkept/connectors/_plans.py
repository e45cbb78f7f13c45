"""A per-connection memo of the catalog lookups a cleanup run needs.

A run's batches share one rule object, so the catalog is read once per run rather than once per
batch; a new run (a new rule object) or a new connection reads it afresh.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from wellkept.connector import PurgeRule

P = TypeVar("P")


class PlanCache(Generic[P]):
    """The last plan made on each connection, for the rule it was made for."""

    def __init__(self, lookup: Callable[[Any, PurgeRule], P]) -> None:
        self._lookup = lookup
        self._plans: weakref.WeakKeyDictionary[Any, tuple[PurgeRule, P]] = (
            weakref.WeakKeyDictionary())

    def __call__(self, conn: Any, rule: PurgeRule) -> P:
        cached = self._plans.get(conn)
        if cached is not None and cached[0] is rule:
            return cached[1]
        plan = self._lookup(conn, rule)
        self._plans[conn] = (rule, plan)
        return plan
