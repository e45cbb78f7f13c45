"""The task contract: a kind of maintenance, its parameters, and what it needs from a target.

Every task kind is a subclass of :class:`Task`. Its docstring is the user's help (`wellkept tasks
KIND`): the first line is the summary, the rest explains when it acts and what it changes. Its
``Params`` model lists the parameters, with types, defaults and descriptions.
"""

from __future__ import annotations

import inspect
import types
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from wellkept.records import TaskResult

if TYPE_CHECKING:
    from wellkept.context import RunContext


def type_label(annotation: Any) -> str:
    """A readable type for help: ``duration``, ``'full' | 'quick'``, ``int | None``."""
    import typing
    from datetime import timedelta

    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_label(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_label(typing.get_args(annotation)[0])
    if annotation is timedelta:
        return "duration"
    if annotation is type(None):
        return "None"
    if origin is not None:
        args = ", ".join(type_label(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


class TaskParams(BaseModel):
    """Base for task parameter models: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def named_targets(self) -> list[tuple[str, str]]:
        """Targets the parameters name besides the task's own (``reconcile``'s two sides),
        as (key path, target name) pairs; the config refuses unknown ones at load time."""
        return []

    def target_problems(self, targets: list[str]) -> list[tuple[str, str]]:
        """What is wrong with these parameters on the instance's several ``targets`` (one
        file shared by all of them, say), as (key, problem) pairs; none by default."""
        return []


class Task(ABC):
    """Base class of every task kind."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[TaskParams]] = TaskParams
    #: capability Protocols (from wellkept.connector) the target's connector must implement
    requires: ClassVar[tuple[type, ...]] = ()
    #: whether the task changes the target (then it honours --dry-run and takes the target lock)
    mutating: ClassVar[bool] = False
    #: whether a mutating task writes to the target itself, so that it cannot run on a
    #: read-only replica (a backup only reads it: it writes its files elsewhere)
    changes_target: ClassVar[bool] = True
    #: the time limit when the task instance sets none
    default_timeout: ClassVar[timedelta] = timedelta(hours=1)
    #: whether an interrupted run can continue from its last checkpoint (ctx.resumed_from)
    resumable: ClassVar[bool] = False
    #: the target used when neither the instance nor the command line names one (``health``
    #: looks at every target, so it runs on the implicit ``host``)
    default_target: ClassVar[str | None] = None
    #: whether an interrupted run is recovered at all (resumed, restarted or validated); when
    #: not, it ends as ``dead`` and waits for a person
    recoverable: ClassVar[bool] = True
    #: 0-10, higher first: the order of the recovery queue and of the coordinator's queue
    priority: ClassVar[int] = 0
    #: resume from a valid checkpoint above this progress percent (None: the config's
    #: ``recovery.resume_above``, seed 004's 25). Tasks whose checkpoints are exact set 0.
    resume_above: ClassVar[float | None] = None
    #: most progress (percent) between two checkpoints; ``ctx.progress`` then checkpoints by
    #: itself when a run gets this far past its last checkpoint (None: only explicit ones)
    checkpoint_every: ClassVar[float | None] = None
    #: whether the run itself judges every target's backup freshness and records the alerts
    #: (the health check does, for its report's status); the alerts middleware, which judges
    #: it after every other run, then does not look again
    judges_backup_freshness: ClassVar[bool] = False

    def __init__(self, params: TaskParams) -> None:
        self.params = params

    def validate(self, ctx: RunContext) -> bool | None:
        """Recovery's validate-only hook: did an interrupted run (far enough along, see
        ``recovery.validate_above``) in fact finish its work? ``ctx.resumed_from`` holds its
        last checkpoint. True: the recovery completes without doing the work again; False:
        the work is resumed or restarted. The default, None, means "cannot tell" (no hook)."""
        return None

    def checkpoint_valid(self, ctx: RunContext, checkpoint: dict[str, Any]) -> bool:
        """Whether a checkpoint can still be resumed from (e.g. the file it names exists).
        Recovery has already checked it belongs to the run and its parameters match."""
        return True

    @classmethod
    def has_validate(cls) -> bool:
        return cls.validate is not Task.validate

    def resume_identity(self) -> dict[str, Any]:
        """What must not change for a later run to resume this one's work (default: every
        parameter). Pacing parameters that do not change *what* is done can be left out."""
        return self.params.model_dump(mode="json")

    @abstractmethod
    def run(self, ctx: RunContext) -> TaskResult:
        """Do the work (or, when ``ctx.dry_run``, say exactly what the work would be)."""

    @classmethod
    def summary(cls) -> str:
        """The docstring's first paragraph, on one line."""
        doc = (inspect.getdoc(cls) or "").strip()
        return " ".join(doc.split("\n\n", 1)[0].split()) if doc else ""

    @classmethod
    def documentation(cls) -> str:
        return inspect.getdoc(cls) or ""

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """Name, type, default and description of each parameter, for help and docs."""
        rows = []
        for name, info in cls.Params.model_fields.items():
            type_name = type_label(info.annotation)
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            rows.append({
                "name": name,
                "type": type_name,
                "required": info.is_required(),
                "default": default,
                "description": info.description or "",
            })
        return rows
