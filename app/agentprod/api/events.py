"""GET /tasks/{task_id}/events: the task's events as Server-Sent Events, from its Redis stream.

Each event's SSE `id` is its stream id, so a client that reconnects with `Last-Event-ID`
(or `?last_event_id=`) gets exactly the events after it — none lost, none twice. The history
comes first, then live events as the worker appends them; after the terminal status event
(done, failed, cancelled) an `end` event closes the stream. A client that connects after the
end gets the whole history and the `end`. A comment line every `KEEPALIVE_SECONDS` keeps
proxies from closing an idle stream.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from agentprod import progress
from agentprod.api import control, errors, identity, tasks
from agentprod.api.services import Services
from agentprod.store import StoredEvent, TaskStore

#: A Redis stream id (each part within 64 bits), or 0: from the start.
EVENT_ID_PATTERN = r"^(0|[0-9]{1,19}-[0-9]{1,19})$"
EVENT_ID = re.compile(EVENT_ID_PATTERN)
BATCH = 200
BLOCK_MS = 1000  # below the Redis client's socket timeout (2 s)
KEEPALIVE_SECONDS = 15.0


def encode(event: StoredEvent) -> bytes:
    """One SSE frame: id, event type, data (one JSON line)."""
    body = progress.payload(event.fields)
    return (
        f"id: {event.event_id}\nevent: {body['type']}\n".encode()
        + b"data: "
        + orjson.dumps(body)
        + b"\n\n"
    )


def end_frame(task_id: str, status: str) -> bytes:
    data = orjson.dumps({"type": progress.END, "task_id": task_id, "status": status})
    return b"event: end\ndata: " + data + b"\n\n"


async def stream(
    store: TaskStore, task_id: str, *, after: str, request: Request
) -> AsyncIterator[bytes]:
    """History after `after`, then live events, until the terminal one (or a disconnect)."""
    last_sent = time.monotonic()
    while True:
        batch = await store.events(task_id, after=after, count=BATCH)
        for event in batch:
            yield encode(event)
            after = event.event_id
            if progress.is_terminal(event.fields):
                yield end_frame(task_id, event.fields.get("status", ""))
                return
        if len(batch) < BATCH:
            break
    while not await request.is_disconnected():
        batch = await store.events(task_id, after=after, count=BATCH, block_ms=BLOCK_MS)
        for event in batch:
            yield encode(event)
            last_sent = time.monotonic()
            after = event.event_id
            if progress.is_terminal(event.fields):
                yield end_frame(task_id, event.fields.get("status", ""))
                return
        if batch:
            continue
        record = await store.get(task_id)
        if record is None or record.status.finished:
            # gone, or ended without its terminal event in the stream (expired, redriven):
            # one last look for events that came meanwhile, then end
            for event in await store.events(task_id, after=after, count=BATCH):
                yield encode(event)
            yield end_frame(task_id, record.status.value if record else "expired")
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            last_sent = time.monotonic()


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    store = services.store

    @routes.get(
        "/tasks/{task_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 404: {}, 422: {}, 503: {}},
    )
    async def task_events(
        task_id: Annotated[str, Path(max_length=tasks.TASK_ID_MAX)],
        request: Request,
        who: Annotated[identity.Caller, Depends(identity.caller)],
        last_event_id: Annotated[str | None, Header(pattern=EVENT_ID_PATTERN)] = None,
        after: Annotated[str | None, Query(alias="last_event_id", pattern=EVENT_ID_PATTERN)] = None,
    ) -> StreamingResponse:
        """The task's events as SSE; resume with the `Last-Event-ID` header."""
        resume = last_event_id or after or "0"
        if not EVENT_ID.match(resume):
            raise errors.ClientError(
                422, "Last-Event-ID", "an event id looks like 1700000000000-0", "event_id"
            )
        control.owned(await store.get(task_id), who, task_id)
        return StreamingResponse(
            stream(store, task_id, after=resume, request=request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return routes
