"""The history store: every run, checkpoint and schedule state, in SQLite or PostgreSQL."""

from wellkept.history.store import HistoryStore

__all__ = ["HistoryStore"]
