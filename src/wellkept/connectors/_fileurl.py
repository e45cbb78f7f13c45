"""URLs that name a local path (``sqlite:///``, ``duckdb:///``, ``files:///``).

``scheme:///relative/path`` is relative to the config file's folder and ``scheme:////abs``
is absolute, as SQLAlchemy spells SQLite URLs. A query string (``?exclude=…``) is kept apart
from the path.
"""

from __future__ import annotations

from pathlib import Path


def resolve(url: str, base_dir: Path, special: tuple[str, ...] = ()) -> str:
    """Make the URL's relative path absolute against ``base_dir``; keep the scheme as written
    (a plugin may subclass a file connector) and any query string. A URL with no path is a
    ValueError: ``files://uploads`` (two slashes) names the host ``uploads`` and no path, and
    would otherwise name the working directory."""
    scheme, slashes, rest = url.partition(":///")
    path, sep, query = rest.partition("?")
    if not slashes or not path:
        scheme = url.partition(":")[0]
        raise ValueError(f"{url!r} names no path; write {scheme}:///relative/path (three "
                         f"slashes) or {scheme}:////absolute/path")
    if path in special or Path(path).is_absolute():
        return url
    return f"{scheme}:///{(base_dir / path).resolve()}{sep}{query}"


def refuse_existing(url: str) -> None:
    """``restore --create`` into a file database: the file must not exist yet."""
    from wellkept.errors import UsageError

    path = path_of(url)
    if path.exists():
        raise UsageError(f"{path} exists already; leave out --create to restore into it")


def remove_created(url: str, sidecars: tuple[str, ...]) -> None:
    """Undo a failed ``restore --create`` into a file database: the file (which did not
    exist before) and the engine's files beside it (``-wal``, ``-journal``…)."""
    path = path_of(url)
    for name in (path.name, *(path.name + s for s in sidecars)):
        (path.parent / name).unlink(missing_ok=True)


def path_of(url: str) -> Path:
    """The path a resolved URL names (without its query string)."""
    return Path(url.split(":///", 1)[1].split("?", 1)[0]) if ":///" in url else Path()
