"""wellkept's history tables, made by ``manage.py migrate``.

The admin's ``TaskExecutionLog`` reads ``wk_runs``, which wellkept creates (with Alembic, the
schema a standalone wellkept uses) the first time it opens its history. Without this, a new
project's admin would fail on a missing table until the first maintenance command ran. So when
``migrate`` has migrated the database that holds the history, wellkept creates its tables
there too, once: a database that has them already is left alone (wellkept applies its own later
migrations whenever it opens the history), so ``flush`` between tests costs nothing.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("wellkept.django")


def create_history_tables(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` receiver (connected in ``ready()``; it runs only inside ``migrate``)."""
    from django.db import connections

    from wellkept.contrib.django.conf import history_state

    url, alias = history_state()
    if alias is None or alias != using:
        return
    if "wk_runs" in connections[using].introspection.table_names():
        return
    from wellkept.history.store import HistoryStore
    from wellkept.redact import redact

    store = HistoryStore(url)
    try:
        store.prepare()
    except Exception as exc:  # the app's own migrations are done: do not fail them
        log.warning("wellkept could not create its history tables in database %r (the first "
                    "maintenance command creates them): %s", using, redact(str(exc)))
    finally:
        store.close()
