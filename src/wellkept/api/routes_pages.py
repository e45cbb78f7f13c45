"""Pages over HTTP: the dashboard (server-rendered, its assets served from the package) and
reports generated on demand."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import HTMLResponse

from wellkept.api.context import ApiContext
from wellkept.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, bad_request
from wellkept.api.models import ReportRequest

STATIC = "/maintenance/dashboard/static"
#: only this server's own files: no CDN can slip in, no inline script runs
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
REFRESH_SECONDS = 10


def router(api: ApiContext) -> APIRouter:
    routes = APIRouter(prefix="/maintenance", tags=["pages"], responses=COMMON_RESPONSES)

    @routes.get("/dashboard", response_class=HTMLResponse, responses={200: {
        "content": {"text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}},
        "description": "the dashboard page (its main part with fragment=true; its data with "
                       "format=json)"}})
    def dashboard(days: Annotated[int, Query(ge=1, le=90)] = 7,
                  fragment: bool = False,
                  refresh: Annotated[int, Query(ge=2, le=3600)] = REFRESH_SECONDS,
                  format: Literal["html", "json"] = "html") -> Response:
        """The web dashboard: health of each target and the host, runs in progress, recent
        results with the failures first, active alerts, schedules with pause/resume, and
        trend charts over the last `days` days. It refreshes itself every `refresh` seconds.
        `format=json` gives the same data as a document (what `wellkept dashboard` shows)."""
        from wellkept.overview import overview
        from wellkept.reports.render import environment
        from wellkept.reports.svg import dashboard_charts

        data = overview(api.engine, days=days)
        if format == "json":
            return Response(json.dumps({**data, "charts": data["charts"].to_json()},
                                       default=str), media_type="application/json")
        html = environment().get_template("dashboard.html").render(
            data=data, charts=dashboard_charts(data["charts"], data["timezone"]), days=days,
            fragment=fragment,
            refresh=refresh, static=STATIC, tokens=api.tokens.configured)
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP,
                                           "Cache-Control": "no-store"})

    @routes.post("/reports/generate", dependencies=[Depends(api.require_token)],
                 response_class=Response, responses={
                     **AUTH_RESPONSES, **bad_request("the body is not JSON"), 200: {
                     "content": {"text/html": {"schema": {"type": "string"}},
                                 "application/json": {"schema": {"type": "object"}},
                                 "text/csv": {"schema": {"type": "string"}}},
                     "description": "the report, in the format asked for"}})
    def generate(request: Annotated[ReportRequest | None, Body()] = None) -> Response:
        """A daily or weekly report (the period before now, against the one before it), as
        HTML (with the dashboard's charts), JSON (the report model) or CSV (one row per run)."""
        from wellkept.reports import build_report, render
        from wellkept.reports.render import MEDIA_TYPES, filename

        asked = request or ReportRequest()
        report = build_report(api.engine, asked.report_type,
                              include_details=asked.include_details)
        return Response(render(report, asked.format_type),
                        media_type=MEDIA_TYPES[asked.format_type], headers={
                            "Content-Disposition":
                                f'inline; filename="{filename(report, asked.format_type)}"'})

    return routes
