"""Bearer tokens for the mutating endpoints.

Every POST needs ``Authorization: Bearer <token>`` with one of ``api.tokens``. The presented
token is compared with *every* configured one by ``hmac.compare_digest`` (constant time, and
no early exit between tokens), so the time taken says nothing about how much of a token was
right. With no token configured, mutating endpoints answer 403: a server without tokens is
read-only, which also keeps a web page in a browser on this machine from starting runs
(cross-site requests cannot send an Authorization header without the server's consent).
A mutating request is refused for its token before anything is said about its body: FastAPI
reads the body before it runs the dependency, so the handler of invalid input asks first.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import HTTPException, Request

SCHEME = "bearer"


class Tokens:
    """The configured tokens, as bytes, checked in constant time."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def accepts(self, presented: str) -> bool:
        given = presented.encode()
        found = False
        for token in self._tokens:
            # no short-circuit: every token is compared whatever the earlier ones gave
            found = hmac.compare_digest(given, token) | found
        return found

    def refusal(self, request: Request) -> HTTPException | None:
        """Why ``request`` may not mutate anything (401 or 403), or None when its token is
        valid."""
        if not self.configured:
            return HTTPException(403, "this server has no api.tokens configured, so it is "
                                      "read-only; add a token to use mutating endpoints")
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != SCHEME or not value.strip():
            return HTTPException(401, "this endpoint needs Authorization: Bearer <token>",
                                 headers={"WWW-Authenticate": "Bearer"})
        if not self.accepts(value.strip()):
            return HTTPException(401, "the bearer token is not valid",
                                 headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    def dependency(self) -> Callable[[Request], None]:
        """A FastAPI dependency that lets a request through only with a valid token."""

        def require_token(request: Request) -> None:
            refused = self.refusal(request)
            if refused is not None:
                raise refused

        return require_token
