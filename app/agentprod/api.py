"""The HTTP API: accept a task at once (202), report its state, health, readiness, metrics.

A task is accepted only once both its record (Redis) and its message (broker) are written:
the record is created unsent first, the message sent, then the record confirmed. If the send
fails the unsent record is discarded and the client gets 503 with Retry-After, so a 202 always
means "will run" and nothing is ever left `queued` without its message. Caller identity is a
dependency (`caller`) so per-tenant auth can slot in later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentprod import metrics
from agentprod.agents import registry
from agentprod.broker.base import BrokerUnavailable, Outgoing, Publisher
from agentprod.models import TaskAccepted, TaskRecord, TaskRequest, TaskStatus, TaskView
from agentprod.settings import Settings
from agentprod.store import TaskStore

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_TIMEOUT_SECONDS = 10.0
READY_CHECK_TIMEOUT_SECONDS = 2.0
BODY_OVERHEAD_BYTES = 64 * 1024  # room for user_id, metadata and JSON escaping
IDEMPOTENCY_KEY_MAX = 255


@dataclasses.dataclass(frozen=True)
class Services:
    """What the API talks to; built by the CLI (real or embedded) and closed by it."""

    settings: Settings
    store: TaskStore
    publisher: Publisher


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling. Anonymous for now; API keys per tenant will fill it in."""

    tenant: str = "public"


async def caller() -> Caller:
    return Caller()


class Unavailable(Exception):
    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.detail = detail


class ClientError(Exception):
    def __init__(self, status: int, field: str, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.kind = status, field, message, kind


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
    )
    app.add_middleware(BodyLimit, limit=settings.max_content_bytes + BODY_OVERHEAD_BYTES)
    app.add_middleware(RequestTimer)  # outermost: refused and failed requests are timed too
    _install_error_handlers(app, retry_after=settings.retry_after_seconds)

    @app.post(
        "/tasks",
        status_code=202,
        response_model=TaskAccepted,
        responses={413: {}, 422: {}, 503: {}},
    )
    async def submit_task(
        body: TaskRequest,
        who: Annotated[Caller, Depends(caller)],
        idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
    ) -> TaskAccepted | JSONResponse:
        """Accept a task; it runs asynchronously. Poll GET /tasks/{task_id} for the outcome."""
        del who
        _check_request(body, settings)
        return await _accept(services, body, idempotency_key)

    @app.get("/tasks/{task_id}", response_model=TaskView, responses={404: {}, 503: {}})
    async def get_task(task_id: str, who: Annotated[Caller, Depends(caller)]) -> TaskView:
        """The task's state; 404 when unknown (or expired after its result TTL)."""
        del who
        record = await _redis(services.store.get(task_id))
        if record is None:
            raise ClientError(404, "task_id", f"no task {task_id}", "not_found")
        return record.view()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {}})
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

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _check_request(body: TaskRequest, settings: Settings) -> None:
    size = len(body.content.encode())
    if size > settings.max_content_bytes:
        raise ClientError(
            413,
            "content",
            f"content is {size} bytes; the limit is {settings.max_content_bytes}",
            "too_large",
        )
    if body.agent is not None and not registry.is_registered(body.agent):
        known = ", ".join(registry.names())
        raise ClientError(422, "agent", f"unknown agent {body.agent!r}; known: {known}", "agent")


async def _accept(
    services: Services, body: TaskRequest, idempotency_key: str | None
) -> TaskAccepted | JSONResponse:
    settings = services.settings
    record = TaskRecord(
        task_id=str(uuid.uuid4()),
        user_id=body.user_id,
        content=body.content,
        agent=body.agent,
        metadata=body.metadata,
        status=TaskStatus.QUEUED,
        created_at=time.time(),
    )
    idempotency = None
    if idempotency_key:
        fingerprint = hashlib.sha256(
            orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
        idempotency = (idempotency_key, fingerprint, settings.idempotency_ttl_seconds)
    created = await _redis(
        services.store.create(
            record, ttl_seconds=settings.task_pending_ttl_seconds, idempotency=idempotency
        )
    )
    if not created.created:
        return await _replay(
            services, created.task_id, created.fingerprint_matches, created.confirmed
        )
    message = record.message()
    try:
        await asyncio.wait_for(
            services.publisher.send(
                Outgoing(
                    topic=settings.mq_topic_request,
                    body=message.encode(),
                    key=record.task_id,
                    tag=record.agent or "default",
                )
            ),
            SEND_TIMEOUT_SECONDS,
        )
    except (BrokerUnavailable, TimeoutError) as error:
        await _discard(services.store, record, idempotency_key or "")
        metrics.SUBMIT_REFUSED.labels(dependency="rocketmq").inc()
        raise Unavailable("rocketmq", f"could not queue the task: {error}") from error
    try:
        await services.store.confirm_sent(record.task_id)
    except RedisError as error:  # the message is out: the worker's claim confirms the record
        log.warning("task %s sent but not confirmed: %s", record.task_id, error)
    metrics.TASKS_SUBMITTED.inc()
    return TaskAccepted(task_id=record.task_id, status=TaskStatus.QUEUED)


async def _replay(
    services: Services, task_id: str, fingerprint_matches: bool, confirmed: bool
) -> TaskAccepted:
    if not fingerprint_matches:
        raise ClientError(
            422,
            "Idempotency-Key",
            "this Idempotency-Key was used with a different request body",
            "idempotency_mismatch",
        )
    if not confirmed:
        raise ClientError(
            409,
            "Idempotency-Key",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            "idempotency_in_progress",
        )
    earlier = await _redis(services.store.get(task_id))
    status = earlier.status if earlier else TaskStatus.QUEUED
    return TaskAccepted(task_id=task_id, status=status)


async def _discard(store: TaskStore, record: TaskRecord, idempotency_key: str) -> None:
    try:
        await store.discard_unsent(
            record.task_id, user_id=record.user_id, idempotency_key=idempotency_key
        )
    except RedisError as error:  # stays unsent: invisible to GET, dropped by workers, expires
        log.warning("could not discard unsent task %s: %s", record.task_id, error)


async def _redis(call: Awaitable[T]) -> T:
    try:
        return await call
    except RedisError as error:
        metrics.SUBMIT_REFUSED.labels(dependency="redis").inc()
        raise Unavailable("redis", f"task store unavailable: {error}") from error


async def _probe(name: str, check: Awaitable[None]) -> tuple[str, dict[str, Any]]:
    try:
        await asyncio.wait_for(check, READY_CHECK_TIMEOUT_SECONDS)
    except Exception as error:
        return name, {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return name, {"ok": True}


class RequestTimer:
    """Observe each request in agentprod_http_request_duration_seconds (pure ASGI).

    The route label is the matched path template (`/tasks/{task_id}`), so ids never become
    label values; unmatched paths count as "unmatched".
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            metrics.HTTP_SECONDS.labels(
                scope["method"], getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuse a declared body above `limit` with 413 before reading it (pure ASGI, no overhead)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self._limit:
                    size = int(value)
                    message = f"request body is {size} bytes; the limit is {self._limit}"
                    await _error(413, "body", message, "too_large")(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def _install_error_handlers(app: FastAPI, *, retry_after: int) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(ClientError)
    async def client_error(_: Request, error: ClientError) -> JSONResponse:
        return _error(error.status, error.field, error.message, error.kind)

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, error: Unavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail, "dependency": error.dependency},
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )


def _problem(item: Any) -> dict[str, Any]:
    """One validation problem, with `field` naming the offending field ("body" for bad JSON)."""
    loc = list(item["loc"])
    if item["type"] == "json_invalid":
        position = loc[1] if len(loc) > 1 else "?"
        return {
            "field": "body",
            "loc": ["body"],
            "msg": f"invalid JSON at position {position}: "
            f"{item.get('ctx', {}).get('error', item['msg'])}",
            "type": "json_invalid",
        }
    field = (
        ".".join(str(part) for part in loc[1:])
        if loc[:1] == ["body"]
        else ".".join(str(part) for part in loc)
    )
    return {"field": field or "body", "loc": loc, "msg": item["msg"], "type": item["type"]}


def _error(status: int, field: str, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"field": field, "msg": message, "type": kind}]}, status_code=status
    )
