"""The worker's own small HTTP server: liveness (`/healthz`) and Prometheus `/metrics`.

`runtime` runs it next to the worker loop on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT (0: off);
the chart's and the operator's liveness probes call `/healthz`. Three fixed routes need no
FastAPI (its request models, OpenAPI and validation cost the worker ~10 MB of RSS): Starlette,
which FastAPI is built on, serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentprod.settings import Settings
from agentprod.worker import Worker


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def app(settings: Settings, worker: Worker) -> Starlette:
    """Liveness (`/healthz`: the receive loop ticked recently), readiness (`/readyz`: Redis
    reachable) and `/metrics` for the worker."""
    stale_after = max(
        60.0, 3.0 * (settings.worker_await_seconds + settings.mq_request_timeout_seconds)
    )

    async def healthz(_: Request) -> JSONResponse:
        age = time.monotonic() - worker.last_heartbeat
        alive = age < stale_after or worker.stopping
        body = {
            "status": "ok" if alive else "stalled",
            "loop_age_seconds": round(age, 1),
            "in_flight": worker.in_flight,
            "stopping": worker.stopping,
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    async def readyz(_: Request) -> JSONResponse:
        """Ready to take work: Redis reachable (while it is not, receiving is paused)."""
        ready = worker.store_available and not worker.stopping
        body = {
            "status": "ready" if ready else "unready",
            "store": "up" if worker.store_available else "down",
            "stopping": worker.stopping,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def serving(settings: Settings, worker: Worker) -> AbstractAsyncContextManager[None]:
    """Serve `app` on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT while the context is open."""

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        if settings.worker_health_port == 0:
            yield
            return
        config = uvicorn.Config(
            app(settings, worker),
            host=settings.worker_health_host,
            port=settings.worker_health_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
        )
        server = _EmbeddedServer(config)
        serving = asyncio.create_task(server.serve())
        try:
            yield
        finally:
            server.should_exit = True
            await serving

    return running()
