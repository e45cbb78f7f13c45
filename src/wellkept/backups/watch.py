"""Backup freshness as a standing alert: judged after every health check and every run.

A ``backup_freshness`` run says whether a target's newest verified backup is younger than its
RPO, but between two such runs nothing would notice a backup going stale, or a new backup
making it fresh again. So the same rule is judged from the catalog whenever wellkept looks at
anything: after every health check and every run. Each rule costs one statement that reads two
rows (``catalog.newest``), however long the catalog's history is.

The rules (``rules``):

- every ``backup_freshness`` task instance, for each of its targets, with its own ``rpo``,
  ``tier`` and ``backup_task``, under the alert key its own runs use (``backup_freshness``, the
  target, the instance's name): a run and a health check speak for one alert, which fires and
  resolves once, whoever sees it first;
- every other target with a ``backup`` task, by the kind's defaults (1 day, checksum): what
  ``wellkept run backup_freshness --target T`` checks, under that run's key (subject
  ``backup_freshness``). Once a target has its own instance, the default's key is resolved,
  so an alert raised before the instance existed does not stay firing with nobody left to
  judge it.

These looks judge the backups there are. A target with none catalogued yet is left as it
stands: a new config would otherwise page someone from its first health check until its first
backup night (a backup that fails raises ``task_failure``; a ``backup_freshness`` run, when
one is scheduled, still fails and alerts on "no backup in the catalog"). Backups made once by
hand (``wellkept backup T`` for a target with no backup task) are not judged: nobody said they
should be kept fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wellkept.alerts.rules import BACKUP_FRESHNESS, DEFAULT_FRESHNESS, Observation
from wellkept.backups.freshness import DEFAULT_RPO, DEFAULT_TIER, freshness
from wellkept.redact import redact
from wellkept.types import Severity

if TYPE_CHECKING:
    from wellkept.config import Settings
    from wellkept.history.store import HistoryStore

log = logging.getLogger("wellkept.alerts")

#: the task kinds whose instances say "this target has backups", and the one whose instances
#: carry an RPO (the rule and the alert key both come from the instance)
BACKUP_KIND = "backup"
FRESHNESS_KIND = "backup_freshness"
#: the subject of the kind's default rule: the task name of `wellkept run backup_freshness`
IMPLICIT = DEFAULT_FRESHNESS


@dataclass(frozen=True)
class Rule:
    """One freshness rule for one target: its alert is (backup_freshness, target, subject)."""

    target: str
    subject: str
    rpo: timedelta = DEFAULT_RPO
    tier: str = DEFAULT_TIER
    backup_task: str | None = None
    #: the kind's default, for a target with a backup task and no instance
    implicit: bool = False


def _targets_of(task: Any) -> list[str]:
    return [task.target] if task.target else list(task.targets)


def rules(settings: Settings, targets: Collection[str] | None = None) -> list[Rule]:
    """The rules for ``targets`` (default: every configured target), instances first."""
    chosen = set(settings.targets if targets is None else targets) & set(settings.targets)
    found: list[Rule] = []
    covered: set[str] = set()
    backed_up: set[str] = set()
    for name, task in sorted(settings.tasks.items()):
        params: Any = task.params
        if task.kind == BACKUP_KIND:
            backed_up.update(_targets_of(task))
        elif task.kind == FRESHNESS_KIND:
            for target in _targets_of(task):
                if target in chosen:
                    found.append(Rule(target, name, params.rpo, params.tier,
                                      params.backup_task))
                    covered.add(target)
    found += [Rule(target, IMPLICIT, implicit=True)
              for target in sorted((chosen & backed_up) - covered)]
    return found


def observations(settings: Settings, store: HistoryStore, now: datetime, *,
                 targets: Collection[str] | None = None,
                 skip: Iterable[tuple[str, str, str]] = ()) -> list[Observation]:
    """Judge every rule (but the alert keys in ``skip``, which the caller judged itself).

    Never raises: a catalog that cannot be read is logged, and what could not be judged is
    left as it stands (neither fired nor resolved) until the next look."""
    done = set(skip)
    out: list[Observation] = []
    chosen = rules(settings, targets)
    try:
        for rule in chosen:
            key = (BACKUP_FRESHNESS, rule.target, rule.subject)
            if key in done:
                continue
            found = freshness(store, rule.target, rule.rpo, now, tier=rule.tier,
                              task=rule.backup_task)
            if found.newest is None:
                continue  # its first backup is still to come: see the module's docstring
            age = round(found.age.total_seconds(), 3) if found.age is not None else None
            out.append(Observation(BACKUP_FRESHNESS, rule.target,
                                   None if found.fresh else Severity.CRITICAL, age,
                                   found.reason, rule.subject))
    except Exception as exc:  # the store failing must not fail the run or the check
        log.error("backup freshness could not be judged (the backups catalog could not be "
                  "read): %s", redact(f"{type(exc).__name__}: {exc}"))
        log.debug("backup freshness failed", exc_info=True)
        return out
    for rule in chosen:
        key = (BACKUP_FRESHNESS, rule.target, IMPLICIT)
        if not rule.implicit and rule.subject != IMPLICIT and key not in done:
            # judged by its own instances now: an alert left by the kind's default resolves
            out.append(Observation(BACKUP_FRESHNESS, rule.target, None, None,
                                   f"{rule.target}: backup freshness is judged by "
                                   f"{rule.subject} now", IMPLICIT))
            done.add(key)
    return out
