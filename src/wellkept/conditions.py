"""Conditions over health figures, for emergency triggers: ``disk_percent > 90``.

The grammar is small on purpose, so that a condition reads like the alert it answers::

    condition  := clause ("or" clause)*
    clause     := comparison ("and" comparison)*
    comparison := figure OP number | "(" condition ")"
    figure     := name | name "[" argument "]"      e.g. disk_percent[/var/lib/postgresql]
    OP         := > | >= | < | <= | == | !=

The figures are those of the latest ``health`` run (see ``history.health_figures``): every name
in :data:`FIGURES`. A figure the latest health run does not have makes its comparison false, so
a trigger never fires on missing data.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: figure name -> (what it is, whether it takes a [argument] and what the argument is)
FIGURES: dict[str, tuple[str, str | None]] = {
    "cpu_percent": ("host CPU use, percent", None),
    "memory_percent": ("host memory use, percent", None),
    "disk_percent": ("the fullest disk, percent; disk_percent[PATH] for one mount point",
                     "path"),
    "health_score": ("the overall health score, 0-100", None),
    "targets_down": ("how many targets are down", None),
    "target_up": ("target_up[NAME] is 1 while that target answers, 0 when it is down",
                  "target"),
    "alerts_critical": ("how many critical alerts the health run raised", None),
    "alerts_warning": ("how many warning alerts the health run raised", None),
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)\s*%?|(?P<op>>=|<=|==|!=|>|<)|"
                    r"(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<arg>[^\]]*)\])?)")


@dataclass(frozen=True)
class Comparison:
    figure: str          # the flattened name: disk_percent or disk_percent[/data]
    op: str
    value: float

    def holds(self, figures: Mapping[str, float]) -> bool:
        seen = figures.get(self.figure)
        return seen is not None and _OPS[self.op](float(seen), self.value)


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[AllOf | AnyOf | Comparison, ...]

    def holds(self, figures: Mapping[str, float]) -> bool:
        return any(p.holds(figures) for p in self.parts)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[AnyOf | Comparison, ...]

    def holds(self, figures: Mapping[str, float]) -> bool:
        return all(p.holds(figures) for p in self.parts)


@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``holds(figures)`` evaluates it."""

    text: str
    tree: AnyOf

    @classmethod
    def parse(cls, text: str, targets: set[str] | None = None) -> Condition:
        """Parse ``text``; raise ValueError naming the position and the choices."""
        return cls(text=" ".join(text.split()), tree=_Parser(text, targets).parse())

    def holds(self, figures: Mapping[str, float]) -> bool:
        return self.tree.holds(figures)

    def figures(self) -> list[str]:
        """The flattened figure names it reads (for reporting what was seen)."""
        out: list[str] = []

        def walk(node: AnyOf | AllOf | Comparison) -> None:
            if isinstance(node, Comparison):
                if node.figure not in out:
                    out.append(node.figure)
            else:
                for part in node.parts:
                    walk(part)

        walk(self.tree)
        return out


class _Parser:
    def __init__(self, text: str, targets: set[str] | None) -> None:
        self.text = text
        self.targets = targets
        self.tokens: list[tuple[str, str, str | None, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self._error(pos, "unexpected character")
            kind = m.lastgroup if m.lastgroup != "arg" else "word"
            assert kind is not None
            start = m.start(kind)
            self.tokens.append((kind, m.group(kind), m.group("arg"), start))
            pos = m.end()
        self.i = 0

    def parse(self) -> AnyOf:
        if not self.tokens:
            raise ValueError("empty condition; write e.g. disk_percent > 90")
        tree = self._any()
        if self.i < len(self.tokens):
            raise self._error(self.tokens[self.i][3], "expected 'and', 'or' or the end")
        return tree

    def _any(self) -> AnyOf:
        parts: list[AllOf | AnyOf | Comparison] = [self._all()]
        while self._peek_word("or"):
            self.i += 1
            parts.append(self._all())
        return AnyOf(tuple(parts))

    def _all(self) -> AllOf:
        parts: list[AnyOf | Comparison] = [self._one()]
        while self._peek_word("and"):
            self.i += 1
            parts.append(self._one())
        return AllOf(tuple(parts))

    def _one(self) -> AnyOf | Comparison:
        kind, value, arg, pos = self._next("a figure such as disk_percent")
        if kind == "paren" and value == "(":
            inner = self._any()
            _, value2, _, pos2 = self._next("')'")
            if value2 != ")":
                raise self._error(pos2, "expected ')'")
            return inner
        if kind != "word":
            raise self._error(pos, "expected a figure such as disk_percent")
        name = self._figure(value, arg, pos)
        kind, op, _, pos = self._next("a comparison (>, >=, <, <=, ==, !=)")
        if kind != "op":
            raise self._error(pos, "expected a comparison (>, >=, <, <=, ==, !=)")
        kind, number, _, pos = self._next("a number")
        if kind != "num":
            raise self._error(pos, f"expected a number after {op!r}")
        return Comparison(name, op, float(number))

    def _figure(self, name: str, arg: str | None, pos: int) -> str:
        if name not in FIGURES:
            raise self._error(pos, f"unknown figure {name!r}; known figures: "
                              + ", ".join(FIGURES))
        takes = FIGURES[name][1]
        if arg is None:
            if name == "target_up":
                raise self._error(pos, "target_up needs a target: target_up[NAME]")
            return name
        if takes is None:
            raise self._error(pos, f"{name} takes no [argument]")
        arg = arg.strip()
        if not arg:
            raise self._error(pos, f"{name}[…] needs a {takes}")
        if takes == "target" and self.targets is not None and arg not in self.targets:
            raise self._error(pos, f"unknown target {arg!r}; defined targets: "
                              + ", ".join(sorted(self.targets)))
        return f"{name}[{arg}]"

    def _peek_word(self, word: str) -> bool:
        return (self.i < len(self.tokens) and self.tokens[self.i][0] == "word"
                and self.tokens[self.i][1].lower() == word)

    def _next(self, wanted: str) -> tuple[str, str, str | None, int]:
        if self.i >= len(self.tokens):
            raise self._error(len(self.text), f"expected {wanted}")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _error(self, pos: int, message: str) -> ValueError:
        return ValueError(f"invalid condition {self.text!r} at position {pos + 1}: {message}")
