"""Runs over HTTP: start one, run every task, an emergency; the history and one run."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from orjson import Fragment

from wellkept.api.context import ApiContext
from wellkept.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, NOT_FOUND, bad_request
from wellkept.api.launcher import ShuttingDown
from wellkept.api.models import QueuedRun, RunModel, RunOptions, RunStatusName, Started
from wellkept.config import task_reference
from wellkept.errors import UsageError
from wellkept.history.pages import PageRun, read_page
from wellkept.types import Trigger

TaskName = Annotated[str, Path(min_length=1, max_length=200, description=(
    "a configured task instance, or a built-in kind (with a target); NAME@TARGET runs the "
    "instance NAME on that one of its targets"))]


def page_json(page: list[PageRun]) -> bytes:
    """A page as the JSON array of its RUN objects; the runs' metrics, details and errors are
    the JSON text the store holds, written into the answer as they are (orjson.Fragment)."""
    return orjson.dumps([
        {"run_id": r.run_id, "task": r.task, "kind": r.kind, "target": r.target,
         "status": r.status, "dry_run": r.dry_run, "trigger": r.trigger,
         "started_at": r.started_at, "finished_at": r.finished_at,
         "duration_seconds": r.duration_seconds, "message": r.message,
         "metrics": Fragment(r.metrics), "details": Fragment(r.details),
         "errors": Fragment(r.errors)} for r in page])


def router(api: ApiContext) -> APIRouter:
    routes = APIRouter(prefix="/maintenance", tags=["runs"], responses=COMMON_RESPONSES)
    auth = [Depends(api.require_token)]

    def start(names: list[str], *, emergency: bool = False, dry_run: bool = False,
              target: str | None = None) -> Started:
        for name in names:
            # NAME@TARGET: the instance NAME on one of its targets (the engine checks which);
            # a kind takes its target from the body instead
            base, on = task_reference(name, api.engine.settings.tasks)
            if not (api.task_known(name) if on is None else base in api.engine.settings.tasks):
                raise HTTPException(404, f"unknown task {name!r}; configured tasks and kinds: "
                                    + ", ".join([*api.engine.settings.tasks,
                                                 *api.engine.registry.task_names()]))
        try:
            queued = api.launcher.start(names, trigger=Trigger.API, emergency=emergency,
                                        dry_run=dry_run, target=target)
        except ShuttingDown:
            raise HTTPException(503, "the server is shutting down; no new runs") from None
        except UsageError as exc:
            raise HTTPException(400, str(exc)) from None
        return Started(run_id=queued[0].run_id, run_ids=[q.run_id for q in queued],
                       trigger="emergency" if emergency else "api", dry_run=dry_run)

    @routes.post("/tasks/{name}/run", status_code=202, dependencies=auth,
                 responses={**AUTH_RESPONSES, **NOT_FOUND,
                            **bad_request("the task cannot run as asked, or the body is not "
                                          "JSON")})
    def run_task(name: TaskName,
                 options: Annotated[RunOptions | None, Body()] = None) -> Started:
        """Start a run of one task now; answers with its id at once, the run goes on in the
        background (trigger `api`). A task with several targets starts one run per target."""
        opts = options or RunOptions()
        return start([name], dry_run=opts.dry_run, target=opts.target)

    @routes.post("/run-all", status_code=202, dependencies=auth,
                 responses={**AUTH_RESPONSES, **bad_request("no task is configured")})
    def run_all() -> Started:
        """Run every configured task instance, one after another, in the background."""
        names = list(api.engine.settings.tasks)
        if not names:
            raise HTTPException(400, "the config defines no tasks")
        return start(names)

    @routes.post("/emergency", status_code=202, dependencies=auth,
                 responses={**AUTH_RESPONSES, **NOT_FOUND,
                            **bad_request("the task cannot run as asked")})
    def emergency(task_name: Annotated[str, Query(min_length=1, max_length=200)]) -> Started:
        """Run a task now with trigger `emergency`, ahead of everything queued."""
        return start([task_name], emergency=True)

    @routes.get("/history", response_model=list[RunModel], responses=NOT_FOUND)
    async def history(request: Request,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      task: Annotated[str | None, Query(max_length=200)] = None,
                      status: RunStatusName | None = None,
                      cursor: Annotated[str | None, Query(max_length=64, description=(
                          "the page starts after this run (the previous page's last run id, "
                          "as the `Link` header gives it)"))] = None,
                      offset: Annotated[int, Query(ge=0, le=10_000_000, description=(
                          "skip this many runs (slower the deeper; prefer the cursor)"))] = 0,
                      ) -> Response:
        """Past runs, newest first (RUN objects). While more follow, the `Link` header names
        the next page (`rel="next"`, with a `cursor`), as fast deep in the history as at
        its start."""
        def read() -> tuple[bytes, str | None] | None:
            page = read_page(api.engine.store, limit=limit + 1, task=task or None,
                             status=status, cursor=cursor or None, offset=offset)
            if page is None:
                return None
            more = len(page) > limit
            return page_json(page[:limit]), page[limit - 1].run_id if more else None

        # the store read blocks (a PostgreSQL store is a round trip): a worker thread, but
        # no more than PAGE_READERS at once (context.py says why)
        found = await anyio.to_thread.run_sync(read, limiter=api.page_readers())
        if found is None:
            raise HTTPException(404, f"no run {cursor!r} to page from (pruned since?); "
                                     "start again without a cursor")
        body, last = found
        headers = {}
        if last is not None:
            nxt = request.url.remove_query_params("offset").include_query_params(cursor=last)
            headers["Link"] = f'<{nxt}>; rel="next"'
        return Response(body, media_type="application/json", headers=headers)

    @routes.get("/runs/{run_id}", response_model=RunModel, responses={
        **NOT_FOUND, 202: {"model": QueuedRun, "description": "queued, not started yet"}})
    def one_run(run_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Any:
        """One run (RUN); 202 with `status: queued` for a run the API queued that has not
        started yet."""
        record = api.engine.store.get_run(run_id)
        if record is not None:
            api.launcher.started(run_id)
            return RunModel.model_validate(record.to_json())
        queued = api.launcher.pending(run_id)
        if queued is not None:
            return JSONResponse(QueuedRun(run_id=queued.run_id, task=queued.task,
                                          target=queued.target).model_dump(), status_code=202)
        raise HTTPException(404, f"no run {run_id!r}")

    return routes
