"""Assemble the FastAPI app from the routers, the middleware and the error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from agentprod import tracing
from agentprod.api import chat, console, control, docs, errors, events, probes, tasks
from agentprod.api.middleware import body_limit, response_headers, timing
from agentprod.api.services import Services
from agentprod.broker.base import BrokerUnavailable

log = logging.getLogger(__name__)

BODY_OVERHEAD_BYTES = 64 * 1024  # room for user_id, metadata and JSON escaping

__all__ = ["Services", "create_app"]


def create_app(
    services: Services,
    *,
    background: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """Build the app; `background` runs alongside it (the embedded worker of `agentprod dev`)."""
    settings = services.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await services.publisher.start()
        except BrokerUnavailable as error:
            log.warning("broker not reachable at start (will retry on use): %s", error)
        if background is None:
            yield
        else:
            async with background():
                yield

    app = FastAPI(
        title="agentprod",
        version="0.1.0",
        summary="Asynchronous AI-agent tasks on RocketMQ 5 and Redis",
        lifespan=lifespan,
        docs_url=None,  # served by `docs.router`, per API_DOCS
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services  # for the dependencies (`identity.caller`)
    app.openapi = lambda: docs.schema(app, settings)  # type: ignore[method-assign]
    limit = settings.max_content_bytes + settings.metadata_max_bytes + BODY_OVERHEAD_BYTES
    app.add_middleware(body_limit.BodyLimit, limit=limit)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining"],
        )
    app.add_middleware(
        response_headers.ResponseHeaders,
        hsts_seconds=settings.api_hsts_seconds,
        docs_policy=response_headers.docs_csp(docs.script_hashes()),
    )
    app.add_middleware(timing.RequestTimer)  # outermost: refused and failed requests are timed
    errors.install(app, retry_after=settings.retry_after_seconds)
    app.include_router(control.router(services))  # before tasks: GET /tasks is control's
    app.include_router(events.router(services))
    app.include_router(tasks.router(services))
    app.include_router(probes.router(services))
    app.include_router(chat.router(services))
    app.include_router(docs.router(app, settings))
    app.include_router(console.router(services))
    tracing.instrument_fastapi(app)  # a span per request when OTEL_* turn tracing on
    return app
