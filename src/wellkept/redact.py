"""Keep secrets out of every output: URLs print as ``postgresql://app:***@host/db``.

Besides the URL pattern, any secret value registered with :func:`register_secret` (passwords
taken from target URLs at config load) is masked wherever it appears, such as inside a driver's
error message.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

MASK = "***"
#: ``scheme://user:password@``. Not a password: a host's port followed by a query whose
#: value holds the ``@`` (``mailto://127.0.0.1:25?to=ops@example.com``, or with a path
#: before the query), so the port and the recipient stay readable. Anything else before an
#: ``@`` is masked, whatever characters it holds (``app:2024/x@db``).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)"
                           r"(?P<pw>(?!\d{1,5}(?:/[^?#@\s]*)?\?[^@\s]*=)[^@\s]+)(?=@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|\S+)", re.I)
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it anywhere it shows up."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact(text: str) -> str:
    """Mask passwords in URLs, ``password=`` pairs and every registered secret."""
    out = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    out = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, out)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, MASK)
    return out
