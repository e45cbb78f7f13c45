"""The HTTP API and web dashboard of ``wellkept serve`` (FastAPI, see docs/api.md).

``create_app(engine, coordinator=None)`` builds the app; ``server.serve`` runs it with uvicorn
beside a coordinator. Imported only by the commands that serve it, so the CLI never pays for
FastAPI.
"""

from wellkept.api.app import create_app

__all__ = ["create_app"]
