"""GET /healthz (alive), /readyz (Redis and RocketMQ reachable, per dependency), open to all;
/metrics per API_METRICS (a key needed by default, or on its own port)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentprod.api import identity
from agentprod.api.services import Services

READY_CHECK_TIMEOUT_SECONDS = 2.0


def router(services: Services) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @routes.get("/readyz", responses={503: {}})
    async def readyz() -> JSONResponse:
        """Redis and RocketMQ reachable, with per-dependency detail."""
        checks = await asyncio.gather(
            _probe("redis", services.store.ping()),
            _probe("rocketmq", services.publisher.check()),
        )
        ready = all(check["ok"] for _, check in checks)
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": dict(checks)},
            status_code=200 if ready else 503,
        )

    settings = services.settings
    if settings.api_metrics == "off" or settings.api_metrics_port:
        return routes  # not on this port (see runtime.run_api for API_METRICS_PORT)
    guard = [Depends(identity.caller)] if settings.api_metrics == "protected" else []

    @routes.get("/metrics", dependencies=guard, include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return routes


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, dict[str, Any]]:
    try:
        await asyncio.wait_for(check, READY_CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is "not ready", reported with its type
        return name, {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return name, {"ok": True}
