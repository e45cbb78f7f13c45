"""The coordinator: ``wellkept serve`` (see ``core``)."""

from wellkept.coordinator.core import Coordinator

__all__ = ["Coordinator"]
