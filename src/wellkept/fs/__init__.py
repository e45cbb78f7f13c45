"""Safe work on the host's files: walking without following symlinks or crossing filesystems,
telling files other processes are writing or have locked, compressing durably in place.

The file task kinds (`log_rotate`, `file_cleanup`, `consolidate`) build on these; none of them
touches a path by name after it has been checked: they act through the descriptor of the
folder they found it in, so a folder swapped for a symlink in between is refused, not followed.
"""

import os

#: the suffix of the hidden files wellkept writes before renaming them into place
TEMP_SUFFIX = ".wktmp"


def temp_name(name: str) -> str:
    """The hidden name a file is written under before it is renamed to ``name``."""
    return f".{name}{TEMP_SUFFIX}"


def shown_name(name: str) -> str:
    """``name`` as text that can be stored and printed: the bytes of a name that is not UTF-8
    (which Python holds as surrogates) are written ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    """Whether a listed name is UTF-8 (undecodable bytes come back as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_temp_name(name: str) -> bool:
    """A temporary file of wellkept's (in progress, or left by a run that was killed)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)
