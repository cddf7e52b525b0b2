"""POST /tasks and GET /tasks/{task_id}: accept a task at once (202) and report its state.

A task is accepted only once both its record (Redis) and its message (broker) are written:
the record is created unsent first, the message sent, then the record confirmed. If the send
fails the unsent record is discarded and the client gets 503 with Retry-After, so a 202 always
means "will run" and nothing is ever left `queued` without its message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from agentprod import metrics, webhook_rules, webhooks
from agentprod.agents import registry
from agentprod.api import errors, identity
from agentprod.api.services import Services
from agentprod.broker.base import BrokerUnavailable, Outgoing
from agentprod.models import (
    TaskAccepted,
    TaskRecord,
    TaskRequest,
    TaskStatus,
    TaskView,
    json_problem,
)
from agentprod.settings import Settings
from agentprod.store import StoreUnavailable, TaskStore

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 255
TASK_ID_MAX = 64  # a UUID is 36
#: OpenAPI links: the id a 202 returns is the one GET /tasks/{task_id} takes (for clients and
#: for schemathesis's stateful phase).
_LINKS = {
    "GetTask": {
        "operationId": "get_task_tasks__task_id__get",
        "parameters": {"task_id": "$response.body#/task_id"},
    }
}
#: Beyond the publisher's own budget, so the publisher's definitive answer always comes first.
SEND_TIMEOUT_MARGIN_SECONDS = 2.0
#: An unconfirmed record this much older than the send budget belongs to a submission that
#: died mid-way (the API process crashed): its Idempotency-Key is repaired, not kept at 409.
ORPHAN_MARGIN_SECONDS = 10.0
#: Unconfirmed records expire after this (a crashed submission's leftovers); the confirm or the
#: worker's claim extends a record to its full TTL.
UNSENT_TTL_SECONDS = 3600
CONFIRM_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    settings = services.settings

    @routes.post(
        "/tasks",
        status_code=202,
        response_model=TaskAccepted,
        responses=errors.responses(409, body=True),
        openapi_extra={"responses": {"202": {"links": _LINKS}}},
    )
    async def submit_task(
        body: TaskRequest,
        who: Annotated[identity.Caller, Depends(identity.caller)],
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
        ] = None,
    ) -> TaskAccepted | JSONResponse:
        """Accept a task; it runs asynchronously. Poll GET /tasks/{task_id} for the outcome."""
        check_request(body, settings)
        return await accept(services, body, idempotency_key, who)

    @routes.get("/tasks/{task_id}", response_model=TaskView, responses=errors.responses(404))
    async def get_task(
        task_id: Annotated[str, Path(max_length=TASK_ID_MAX)],
        who: Annotated[identity.Caller, Depends(identity.caller)],
    ) -> TaskView:
        """The task's state; 404 when unknown, expired after its result TTL, or another
        tenant's (never 403: a task id tells nothing about other tenants)."""
        record = await services.store.get(task_id)
        if record is None or record.tenant != who.tenant:
            raise errors.ClientError(404, "task_id", f"no task {task_id}", "not_found")
        return record.view()

    return routes


def check_request(body: TaskRequest, settings: Settings) -> None:
    """Refuse what the model cannot: content over the size limit (413), an unknown agent, a
    metadata over its bounds, a deadline beyond the server's (422)."""
    problem = json_problem(body.metadata, path="metadata", max_depth=settings.metadata_max_depth)
    if problem:
        raise errors.ClientError(422, "metadata", problem, "metadata")
    encoded = len(orjson.dumps(body.metadata))
    if encoded > settings.metadata_max_bytes:
        raise errors.ClientError(
            413,
            "metadata",
            f"metadata is {encoded} bytes as JSON; the limit is {settings.metadata_max_bytes}",
            "too_large",
        )
    if body.deadline_seconds is not None and body.deadline_seconds > settings.task_deadline_seconds:
        raise errors.ClientError(
            422,
            "deadline_seconds",
            f"at most {settings.task_deadline_seconds} seconds on this server",
            "deadline",
        )
    size = len(body.content.encode())
    if size > settings.max_content_bytes:
        raise errors.ClientError(
            413,
            "content",
            f"content is {size} bytes; the limit is {settings.max_content_bytes}",
            "too_large",
        )
    if body.callback_url is not None:
        try:
            webhooks.check_callback_url(body.callback_url, settings)
        except webhook_rules.CallbackRefused as error:
            raise errors.ClientError(422, "callback_url", str(error), "callback_url") from None
    if body.agent is None:
        return  # the worker's AGENT decides, and checks the parameters itself
    if not registry.is_enabled(body.agent, test_agents=settings.test_agents):
        known = ", ".join(registry.enabled_names(test_agents=settings.test_agents))
        raise errors.ClientError(
            422, "agent", f"unknown agent {body.agent!r}; known: {known}", "agent"
        )
    try:
        registry.validate_params(body.agent, body.metadata)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(["metadata", *(str(part) for part in first["loc"])])
        raise errors.ClientError(
            422, field, registry.describe(error, prefix="metadata."), "agent_params"
        ) from None


async def accept(
    services: Services,
    body: TaskRequest,
    idempotency_key: str | None,
    who: identity.Caller,
    *,
    repaired: bool = False,
) -> TaskAccepted | JSONResponse:
    """Record, send, confirm (see the module docstring); the /chat routes submit through it."""
    settings = services.settings
    budget = services.publisher.send_budget_seconds
    now = time.time()
    record = TaskRecord(
        task_id=str(uuid.uuid4()),
        tenant=who.tenant,
        user_id=body.user_id,
        content=body.content,
        agent=body.agent,
        metadata=body.metadata,
        callback_url=body.callback_url,
        status=TaskStatus.QUEUED,
        created_at=now,
        deadline_at=now + (body.deadline_seconds or settings.task_deadline_seconds),
        priority=body.priority,
    )
    idempotency = None
    if idempotency_key:
        fingerprint = hashlib.sha256(
            orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
        idempotency = (idempotency_key, fingerprint, settings.idempotency_ttl_seconds)
    created = await services.store.create(
        record,
        ttl_seconds=min(UNSENT_TTL_SECONDS, settings.task_pending_ttl_seconds),
        idempotency=idempotency,
        max_open=who.max_queued,
        open_max_age_seconds=settings.task_pending_ttl_seconds,
    )
    if created.over_cap:
        raise errors.ClientError(
            429,
            "tenant",
            f"tenant {who.tenant!r} has {who.max_queued} unfinished tasks, its cap; "
            "retry when some have finished",
            "queued_cap",
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )
    if not created.created:
        orphaned = (
            not created.confirmed
            and created.created_at is not None
            and time.time() - created.created_at > budget + ORPHAN_MARGIN_SECONDS
        )
        if orphaned and not repaired and idempotency_key:
            # The earlier submission with this key never finished (its API process died
            # between the record and the send): drop its leftovers and submit anew.
            log.warning("task %s: submission was interrupted; key repaired", created.task_id)
            await services.store.discard_unsent(
                created.task_id,
                tenant=who.tenant,
                user_id=body.user_id,
                idempotency_key=idempotency_key,
            )
            return await accept(services, body, idempotency_key, who, repaired=True)
        return await _replay(
            services, created.task_id, created.fingerprint_matches, created.confirmed
        )
    message = record.message()
    try:
        await asyncio.wait_for(
            services.publisher.send(
                Outgoing(
                    topic=settings.request_topic(record.priority),
                    body=message.encode(),
                    key=record.task_id,
                    tag=record.agent or "default",
                )
            ),
            budget + SEND_TIMEOUT_MARGIN_SECONDS,
        )
    except (BrokerUnavailable, TimeoutError) as error:
        await _discard(services.store, record, idempotency_key or "")
        metrics.SUBMIT_REFUSED.labels(dependency="rocketmq").inc()
        raise errors.Unavailable("rocketmq", f"could not queue the task: {error}") from error
    try:
        await services.store.confirm_sent(
            record.task_id, ttl_seconds=settings.task_pending_ttl_seconds
        )
    except StoreUnavailable as error:  # the message is out: confirm later (or the claim will)
        log.warning("task %s sent but not confirmed (retrying): %s", record.task_id, error)
        _confirm_later(services, record.task_id)
    metrics.TASKS_SUBMITTED.inc()
    return TaskAccepted(task_id=record.task_id, status=TaskStatus.QUEUED)


_CONFIRMING: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak refs)


def _confirm_later(services: Services, task_id: str) -> None:
    """Retry a failed confirm in the background, so the record gets its full TTL."""

    async def retry() -> None:
        for delay in CONFIRM_RETRY_SECONDS:
            await asyncio.sleep(delay)
            try:
                await services.store.confirm_sent(
                    task_id, ttl_seconds=services.settings.task_pending_ttl_seconds
                )
            except StoreUnavailable:
                continue
            return
        log.warning("task %s: confirm gave up; the worker's claim will confirm it", task_id)

    task = asyncio.create_task(retry())
    _CONFIRMING.add(task)
    task.add_done_callback(_CONFIRMING.discard)


async def _replay(
    services: Services, task_id: str, fingerprint_matches: bool, confirmed: bool
) -> TaskAccepted:
    if not fingerprint_matches:
        # 409, not 422: the body is valid on its own; it conflicts with the earlier request
        # that used the key (and a fuzzer rightly flags a 422 for a schema-valid body).
        raise errors.ClientError(
            409,
            "Idempotency-Key",
            "this Idempotency-Key was used with a different request body",
            "idempotency_mismatch",
        )
    if not confirmed:
        raise errors.ClientError(
            409,
            "Idempotency-Key",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            "idempotency_in_progress",
        )
    earlier = await services.store.get(task_id)
    status = earlier.status if earlier else TaskStatus.QUEUED
    return TaskAccepted(task_id=task_id, status=status)


async def _discard(store: TaskStore, record: TaskRecord, idempotency_key: str) -> None:
    try:
        await store.discard_unsent(
            record.task_id,
            tenant=record.tenant,
            user_id=record.user_id,
            idempotency_key=idempotency_key,
        )
    except StoreUnavailable as error:  # stays unsent: invisible to GET, dropped, expires
        log.warning("could not discard unsent task %s: %s", record.task_id, error)
