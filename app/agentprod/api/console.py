"""`/console`: the web console's page and the JSON it polls.

The page and its script are static (no data in them), the JSON routes take the same API key as
every other route (`identity.caller`): the page asks for a key when the API wants one and
keeps it in the tab's session storage. Tasks are the caller's tenant's; pipelines are what the
operator wrote for every pipeline using this Redis (`console.state`).
"""

from __future__ import annotations

import asyncio
import math
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from agentprod.api import errors, identity
from agentprod.api.services import Services
from agentprod.console import state, views
from agentprod.store import StoreUnavailable

STATIC = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
RECENT_LIMIT_MAX = 200


def _static(name: str) -> bytes:
    return resources.files("agentprod.console").joinpath("static", name).read_bytes()


def router(services: Services) -> APIRouter:
    routes = APIRouter(tags=["console"])
    page = _static("index.html")
    assets = {name: _static(name) for name in STATIC}

    @routes.get("/console", include_in_schema=False)
    async def console_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @routes.get("/console/static/{name}", include_in_schema=False)
    async def console_asset(name: str) -> Response:
        if name not in assets:
            raise errors.ClientError(404, "name", f"no console file {name}", "not_found")
        return Response(
            assets[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"}
        )

    @routes.get("/console/api/tasks", responses=errors.responses())
    async def console_tasks(
        who: Annotated[identity.Caller, Depends(identity.caller)],
        limit: Annotated[int, Query(ge=1, le=RECENT_LIMIT_MAX)] = 50,
    ) -> dict[str, Any]:
        """The caller's tenant's latest tasks (newest first, from the index `GET /tasks` reads:
        every status, cancelled and dead-lettered ones too), their counts and throughput, and
        per agent: tasks, outcomes, tokens, cost, cache hits."""
        try:
            page = await services.store.index_page(
                who.tenant, newest=math.inf, oldest=-math.inf, limit=limit
            )
            records = await services.store.get_many([entry.task_id for entry in page.entries])
        except StoreUnavailable as error:
            raise errors.Unavailable("redis", f"tasks unavailable: {error}") from error
        found = [r for r in records if r is not None and r.tenant == who.tenant]
        return {
            "tasks": [views.row(r) for r in found],
            "summary": views.summary(found, now=time.time()),
            "agents": views.by_agent(found),
        }

    @routes.get("/console/api/tasks/{task_id}", responses=errors.responses(404))
    async def console_task(
        task_id: Annotated[str, Path(max_length=64)],
        who: Annotated[identity.Caller, Depends(identity.caller)],
    ) -> dict[str, Any]:
        """One task in full: its request, result or error, timings."""
        record = await services.store.get(task_id)
        if record is None or record.tenant != who.tenant:
            raise errors.ClientError(404, "task_id", f"no task {task_id}", "not_found")
        return views.detail(record)

    @routes.get("/console/api/pipelines", responses=errors.responses())
    async def console_pipelines(
        _: Annotated[identity.Caller, Depends(identity.caller)],
    ) -> dict[str, Any]:
        """Each pipeline's latest snapshot (from the operator) and its last hour of samples."""
        client = services.store.client
        try:
            found = await state.pipelines(client)
            histories = await asyncio.gather(
                *(
                    state.pipeline_history(client, namespace=p["namespace"], name=p["name"])
                    for p in found
                )
            )
        except Exception as error:
            raise errors.Unavailable("redis", f"pipelines unavailable: {error}") from error
        for pipeline, history in zip(found, histories, strict=True):
            pipeline["history"] = [
                {
                    "t": s.get("at"),
                    "lag": s.get("lag"),
                    "replicas": s.get("replicas"),
                    "desired": s.get("desiredReplicas"),
                    "reason": s.get("reason"),
                }
                for s in history
            ]
        return {"pipelines": found}

    return routes
