"""Import optional drivers with an actionable error when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from wellkept.errors import MissingDependency


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming ``pip install 'wellkept[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(module, extra, purpose) from None
