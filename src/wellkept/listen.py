"""Where the HTTP API listens: ``HOST:PORT`` parsed, and whether that address is loopback.

A server on a loopback address is reachable only from this machine; on any other address
(``0.0.0.0``, ``::``, a LAN address, a host name that is not ``localhost``) it is reachable by
others, so ``wellkept serve`` refuses to start there without an API token. The decision is
made from the text alone, before anything is bound, and without a DNS lookup: a name other than
``localhost`` counts as not loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wellkept.errors import ConfigError


@dataclass(frozen=True)
class ListenAddress:
    """A parsed ``HOST:PORT`` (``[::1]:8000`` for IPv6)."""

    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host.lower() in ("localhost", "localhost."):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve anywhere
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else \
            "[::1]" if self.host == "::" else str(self).rsplit(":", 1)[0]
        return f"http://{host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """``127.0.0.1:8000``, ``[::1]:8000``, ``0.0.0.0:80``, ``localhost:9000``; ValueError
    naming what is wrong otherwise."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not [IPv6]:PORT, e.g. [::1]:8000")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:8000")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8000")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return ListenAddress(host, int(port_text))


def check_exposure(address: ListenAddress, tokens: list[str]) -> None:
    """Refuse a non-loopback address when no API token is configured (ConfigError)."""
    if address.is_loopback or any(tokens):
        return
    raise ConfigError(f"api.listen: refusing to serve on {address}, which is not a loopback "
                      "address, without a token: add one to api.tokens (e.g. "
                      '["${WELLKEPT_API_TOKEN}"]) or listen on 127.0.0.1')
