"""``wellkept restore``: load a catalogued backup into a database, then check it.

The destination is any URL a connector understands (same engine as the backup). With
``--create`` it is created first (a server database must not exist yet, nor a file), and
removed again if the restore fails. A database that is not empty is refused unless the user
says ``--yes`` (then the engine replaces what is there: PostgreSQL drops the dumped objects
first). The artifact's size and sha256 are checked before anything is written. After the
restore the row counts per table are compared with the manifest.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wellkept.backups import catalog, encryption
from wellkept.backups.artifact import sha256_of
from wellkept.backups.catalog import Entry
from wellkept.backups.storage import Storage, open_storage
from wellkept.backups.verify import check_stored, compare_counts, restore_stream
from wellkept.config import Settings, TargetSettings
from wellkept.connector import Dumpable, DumpOptions
from wellkept.errors import TaskFailed, UsageError
from wellkept.history.store import HistoryStore
from wellkept.redact import redact

log = logging.getLogger(__name__)


def restore_backup(settings: Settings, backup_id: str, url: str, *, replace: bool, jobs: int,
                   create: bool = False,
                   progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    from wellkept.registry import Registry

    entry = catalog.get(HistoryStore(settings.state), backup_id)
    if entry is None:
        raise UsageError(f"no backup {backup_id!r} in the catalog; see `wellkept backups list`")
    m = entry.manifest
    scheme = url.split(":", 1)[0].lower()
    cls = Registry.default().connector_class(scheme)
    if cls.name != m.engine:
        raise UsageError(f"backup {backup_id} is a {m.engine} backup; --into is a {cls.name} "
                         "URL")
    try:
        url = cls.resolve_url(url, Path.cwd())
    except ValueError as exc:
        raise UsageError(f"--into: {redact(str(exc))}") from None
    say = progress or (lambda _text: None)
    keys = None
    if m.encrypted:
        task = settings.tasks.get(m.task)
        identity = getattr(task.params, "age_identity_file", None) if task else None
        keys = encryption.load_identities(settings.base_dir / identity if identity else None)
    storage = open_storage(entry.storage, settings.base_dir)
    if create:
        # first, as it is cheap: an existing database or a URL naming none is refused before
        # the artifact is read; a damaged artifact then fails the restore, which removes it
        say(f"creating {redact(url)} …")
        cls.create_database(url, TargetSettings(url=url))
    try:
        found, seconds, described = _restore(entry, storage, url, keys, replace=replace,
                                             jobs=jobs, say=say)
    except BaseException:
        if create:  # what this command made goes, so that it can be run again as it is
            say(f"the restore failed: removing {redact(url)}, which --create made …")
            try:
                cls.drop_created_database(url, TargetSettings(url=url))
            except Exception as exc:
                log.warning("could not remove %s, which --create made: %s", redact(url),
                            redact(str(exc)))
        raise
    problems = compare_counts(m.counts, found)
    passed = not problems or not m.counts_exact
    message = f"restored {m.id} into {redact(url)} in {seconds:.1f}s: {described}"
    if problems:
        message += ("; counts differ from the manifest: " if m.counts_exact else
                    "; counts differ (taken outside the dump's snapshot): ") + \
            "; ".join(problems[:10])
    else:
        message += ", matching the manifest"
    return {"backup_id": m.id, "into": redact(url), "passed": passed, "seconds": round(seconds, 3),
            "counts": found, "problems": problems, "message": message}


def _restore(entry: Entry, storage: Storage, url: str, keys: Any, *, replace: bool, jobs: int,
             say: Callable[[str], Any]) -> tuple[dict[str, int], float, str]:
    """Restore into ``url``; the counts found after, the seconds it took, and those counts in
    words."""
    from wellkept.tasks.backup import connect_url

    m = entry.manifest
    dest = connect_url(url, TargetSettings(url=url), "restore")
    try:
        assert isinstance(dest, Dumpable)
        if not dest.is_empty() and not replace:
            raise UsageError(f"{redact(url)} is not empty; restoring would overwrite it. "
                             "Add --yes to restore over it")
        _check_before_restoring(entry, storage, say)
        workdir = Path(tempfile.mkdtemp(prefix="wellkept-restore-"))
        say(f"restoring {m.id} ({m.format}, {m.raw_bytes:,} bytes) into {redact(url)} …")
        started = time.monotonic()
        try:
            restore_stream(entry, storage, dest, DumpOptions(workdir=workdir, jobs=jobs,
                                                             replace=replace), keys)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        seconds = time.monotonic() - started
        found = dest.content_counts()
        return found, seconds, dest.describe_counts(found)
    finally:
        dest.close()


def _check_before_restoring(entry: Entry, storage: Storage, say: Callable[[str], Any]) -> None:
    """The stored bytes must have the manifest's size and sha256 before anything reaches the
    database: a restore (pg_restore --clean, a MySQL dump's DROP TABLE) replaces the tables
    before it reads their data, so damage found at the end of the stream would leave the
    database emptied. This costs one extra read of the artifact."""
    say(f"checking {entry.manifest.artifact} against its manifest …")
    try:
        with storage.reader(entry.manifest.artifact) as fh:
            check_stored(entry, *sha256_of(fh))
    except TaskFailed as exc:
        raise TaskFailed(f"{exc}; nothing was restored") from None
