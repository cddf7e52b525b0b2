"""The worker's own small HTTP server: liveness (`/healthz`) and Prometheus `/metrics`.

`runtime` runs it next to the worker loop on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT (0: off);
the chart's and the operator's liveness probes call `/healthz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentprod.settings import Settings
from agentprod.worker import Worker


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serving(settings: Settings, worker: Worker) -> AbstractAsyncContextManager[None]:
    """Liveness (`/healthz`: the receive loop ticked recently), readiness (`/readyz`: Redis
    reachable) and `/metrics` for the worker."""
    stale_after = max(
        60.0, 3.0 * (settings.worker_await_seconds + settings.mq_request_timeout_seconds)
    )
    app = FastAPI(title="agentprod worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        age = time.monotonic() - worker.last_heartbeat
        alive = age < stale_after or worker.stopping
        body = {
            "status": "ok" if alive else "stalled",
            "loop_age_seconds": round(age, 1),
            "in_flight": worker.in_flight,
            "stopping": worker.stopping,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to take work: Redis reachable (while it is not, receiving is paused)."""
        ready = worker.store_available and not worker.stopping
        body = {
            "status": "ready" if ready else "unready",
            "store": "up" if worker.store_available else "down",
            "stopping": worker.stopping,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        if settings.worker_health_port == 0:
            yield
            return
        config = uvicorn.Config(
            app,
            host=settings.worker_health_host,
            port=settings.worker_health_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _EmbeddedServer(config)
        serving = asyncio.create_task(server.serve())
        try:
            yield
        finally:
            server.should_exit = True
            await serving

    return running()
