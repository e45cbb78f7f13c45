"""``@wellkept.task``: a plain function (sync or async) as a task kind (CONTRACT §6).

::

    @wellkept.task(name="reindex_search", recoverable=True, checkpoint_every=25, priority=2)
    def reindex_search(ctx, index: str, batch: int = 500) -> None:
        ...

The function's parameters after ``ctx`` become the kind's parameters (a pydantic model built
from their annotations and defaults), so a task instance in the config sets them like any
built-in kind's, and unknown or mistyped keys are refused at load time. Its docstring is the
kind's help. Registered through the ``wellkept.tasks`` entry-point group or the config's
``plugins:`` list, it is scheduled, recorded, leased, retried and recovered exactly like a
built-in kind: it runs through the same engine and middleware.

What the function returns becomes the run's result: None (completed), a message (str), a
dict (numbers go to ``metrics``, the rest to ``details``) or a ``TaskResult``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import create_model

from wellkept.context import RunContext
from wellkept.durations import parse_duration
from wellkept.records import TaskResult
from wellkept.task import Task, TaskParams

Validator = Callable[..., bool]


class FunctionTask(Task):
    """Base of the kinds ``@wellkept.task`` makes; ``function`` is the decorated callable."""

    function: Callable[..., Any]
    validator: Validator | None = None

    def _kwargs(self) -> dict[str, Any]:
        return {name: getattr(self.params, name) for name in type(self.params).model_fields}

    def run(self, ctx: RunContext) -> TaskResult:
        return _as_result(_call(type(self).function, ctx, self._kwargs()), self.kind)

    def validate(self, ctx: RunContext) -> bool | None:
        check = type(self).validator
        return None if check is None else bool(_call(check, ctx, self._kwargs()))

    @classmethod
    def has_validate(cls) -> bool:
        return cls.validator is not None


class TaskFunction:
    """What ``@wellkept.task`` returns: still callable as the function, with ``task_class``
    (the registered kind) and ``validator`` (to attach the validate-only recovery hook)."""

    def __init__(self, function: Callable[..., Any], task_class: type[FunctionTask]) -> None:
        self.function = function
        self.task_class = task_class
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def validator(self, check: Validator) -> Validator:
        """Register ``check(ctx, **params) -> bool``: above ``recovery.validate_above`` an
        interrupted run is only checked with it; True means its work is done."""
        self.task_class.validator = staticmethod(check)
        return check


def task(name: str | None = None, *, recoverable: bool = False,
         checkpoint_every: float | None = None, priority: int = 0, mutating: bool = False,
         timeout: str | timedelta | None = None, summary: str | None = None,
         requires: tuple[type, ...] = ()) -> Callable[[Callable[..., Any]], TaskFunction]:
    """Make a task kind of a function ``fn(ctx, **params)``.

    ``name``: the kind (default: the function's name). ``recoverable``: an interrupted run is
    recovered (resumed from its last ``ctx.checkpoint`` when far enough along, else
    restarted); when False it ends ``dead`` and waits for a person. ``checkpoint_every``:
    ``ctx.progress`` records a checkpoint by itself every that many percent. ``priority``
    (0-10): its place in the coordinator's and the recovery queue. ``mutating``: it changes
    its target (takes the target lock, honours ``--dry-run``: ``ctx.dry_run``).
    ``timeout``: its default time limit (``"30min"``). ``requires``: connector capabilities
    (protocols from ``wellkept.connector``) its target must offer; with none it runs against
    the implicit ``host`` target unless an instance names one."""
    if checkpoint_every is not None and not 0 < checkpoint_every <= 100:
        raise ValueError("checkpoint_every is a percentage: more than 0, at most 100")
    if not 0 <= priority <= 10:
        raise ValueError("priority is 0-10")

    def decorate(function: Callable[..., Any]) -> TaskFunction:
        kind = name or function.__name__
        attrs: dict[str, Any] = {
            "__doc__": inspect.getdoc(function) or summary or f"The {kind} task.",
            "__module__": function.__module__,
            "kind": kind, "Params": _params_model(function, kind),
            "function": staticmethod(function), "resumable": recoverable,
            "recoverable": recoverable, "checkpoint_every": checkpoint_every,
            "priority": priority, "mutating": mutating, "requires": tuple(requires),
            # a function that needs nothing of a target runs on this machine unless told
            "default_target": None if requires else "host",
        }
        if timeout is not None:
            attrs["default_timeout"] = parse_duration(timeout)
        cls = type(f"{_camel(kind)}Task", (FunctionTask,), attrs)
        return TaskFunction(function, cls)

    return decorate


def _params_model(function: Callable[..., Any], kind: str) -> type[TaskParams]:
    params = list(inspect.signature(function).parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"@wellkept.task {kind}: the first parameter must be ctx")
    hints = _hints(function)
    fields: dict[str, Any] = {}
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"@wellkept.task {kind}: *{p.name} and **{p.name} cannot be "
                            "parameters; name each one")
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    model: type[TaskParams] = create_model(
        f"{_camel(kind)}Params", __base__=TaskParams, **fields)
    return model


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(function)
    except Exception:  # an annotation naming something not importable: treat it as Any
        return {}


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("-", "_").split("_")) or "User"


def _call(function: Callable[..., Any], ctx: RunContext, kwargs: dict[str, Any]) -> Any:
    result = function(ctx, **kwargs)
    if inspect.isawaitable(result):
        # each run has a worker thread of its own and no event loop: give it one
        async def wait() -> Any:
            return await result

        return asyncio.run(wait())
    return result


def _as_result(value: Any, kind: str) -> TaskResult:
    if isinstance(value, TaskResult):
        return value
    if value is None:
        return TaskResult(message=f"{kind} completed")
    if isinstance(value, str):
        return TaskResult(message=value)
    if isinstance(value, dict):
        metrics = {k: v for k, v in value.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        details = {k: v for k, v in value.items() if k not in metrics}
        return TaskResult(message=f"{kind} completed", metrics=metrics, details=details)
    raise TypeError(f"task {kind} returned {type(value).__name__}; return None, a str, a dict "
                    "or a TaskResult")
