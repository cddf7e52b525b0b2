"""GET /healthz (alive), /readyz (Redis and RocketMQ reachable, per dependency), /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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

    @routes.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return routes


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, dict[str, Any]]:
    try:
        await asyncio.wait_for(check, READY_CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is "not ready", reported with its type
        return name, {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return name, {"ok": True}
