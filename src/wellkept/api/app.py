"""The app factory: ``create_app(engine, coordinator=None)`` builds the FastAPI app from an
explicit list of routers; nothing is made at import time, so two apps never share state.

With a ``coordinator`` (``wellkept serve``), runs started over HTTP go to its workers; without
one, to a pool of the app's own (see ``launcher``), which the app's shutdown drains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from wellkept import __version__
from wellkept.api import errors, routes_health, routes_pages, routes_runs, routes_status
from wellkept.api.auth import Tokens
from wellkept.api.context import ApiContext
from wellkept.api.launcher import Launcher

if TYPE_CHECKING:
    from wellkept.coordinator import Coordinator
    from wellkept.engine import Engine

RouterFactory = Callable[[ApiContext], APIRouter]
#: every router of the API, in the order of the OpenAPI document
ROUTERS: tuple[RouterFactory, ...] = (routes_runs.router, routes_status.router,
                                      routes_pages.router, routes_health.router)
DESCRIPTION = """\
wellkept's maintenance API: start runs, read the history and the coordinator's state, pause and
resume schedules, generate reports, and read health and Prometheus metrics.

Every POST needs `Authorization: Bearer <token>` with one of the config's `api.tokens`.
Errors are JSON: `{"error": "...", "detail": [...]}`.
"""


def create_app(engine: Engine, coordinator: Coordinator | None = None, *,
               routers: Sequence[RouterFactory] = ROUTERS,
               tokens: Sequence[str] | None = None) -> FastAPI:
    """The API and dashboard over ``engine`` (``tokens``: default the config's)."""
    launcher = Launcher(engine, coordinator)
    api = ApiContext(engine=engine, coordinator=coordinator, launcher=launcher,
                     tokens=Tokens(engine.settings.api.tokens if tokens is None else tokens))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        launcher.close(engine.settings.coordinator.shutdown_grace.total_seconds())

    # the interactive docs pages load their scripts from a CDN: left out (no CDN)
    app = FastAPI(title="wellkept", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.wellkept = api
    errors.install(app)
    for factory in routers:
        app.include_router(factory(api))
    app.mount(routes_pages.STATIC, StaticFiles(packages=[("wellkept.api", "static")]),
              name="static")
    return app
