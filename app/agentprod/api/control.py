"""Task control: GET /tasks (the caller's tasks, filtered and paged), POST /tasks/{id}/cancel,
GET /tasks/{id}/callbacks (the webhook delivery attempts).

Every route is scoped by the caller's tenant: the list reads that tenant's index
(`keys.tenant_tasks`), and another tenant's task answers 404 like an unknown one.

The list pages through the index newest first by creation time. A filter (status, agent) is
applied to the index rows as they are read, at most `SCAN_BUDGET` rows per request: a page
may then hold fewer than `limit` tasks and still carry a `next_cursor` — follow it until it is
null. The cursor is opaque (the position of the last row read).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator

from agentprod.api import errors, identity, tasks
from agentprod.api.services import Services
from agentprod.models import JSON, TaskRecord, TaskStatus, TaskView
from agentprod.store import IndexEntry

MAX_PAGE = 100
DEFAULT_PAGE = 20
#: Index rows one list request reads at most (filters that match rarely page on).
SCAN_BUDGET = 2000
CHUNK = 200


class TaskPage(BaseModel):
    """GET /tasks answer."""

    tasks: list[TaskView]
    next_cursor: str | None = None


class CancelAnswer(BaseModel):
    """POST /tasks/{id}/cancel answer: 200 when the task is `cancelled` now, 202 while its
    worker stops it (`cancel_requested`; watch GET /tasks/{id} or its events)."""

    task_id: str
    status: TaskStatus
    cancel_requested: bool


class CallbackAttempts(BaseModel):
    task_id: str
    callback_url: str | None
    attempts: list[dict[str, JSON]]


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    """Only what the schema's `format: date-time` admits (RFC 3339 with an offset): pydantic
    alone would also take `2020-01-01` or `1700000000`."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]

#: `<created_at>_<task_id>` of the last row a page read: plain, so that every text the schema's
#: pattern admits is a position (a fuzzer's valid cursor gets a page, never a 4xx).
CURSOR_PATTERN = r"^([0-9]{1,12}(?:\.[0-9]{1,17})?)_([0-9A-Za-z-]{1,64})$"
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a page ended: the creation time and id of the last index row read."""

    created_at: float
    task_id: str

    def encode(self) -> str:
        return f"{self.created_at!r}_{self.task_id}"

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """Any text matching CURSOR_PATTERN (which the schema states) is a position."""
        match = _CURSOR.match(cursor)
        if match is None:  # the Query pattern refuses it first; kept for direct callers
            raise errors.ClientError(422, "cursor", "not a cursor this API returned", "cursor")
        return cls(float(match.group(1)), match.group(2))

    def passed(self, entry: IndexEntry) -> bool:
        """True when `entry` comes before this position in the listing (already served)."""
        return entry.created_at == self.created_at and entry.task_id >= self.task_id


def matches(entry: IndexEntry, statuses: set[str], agent: str | None) -> bool:
    if statuses and entry.status not in statuses:
        return False
    return agent is None or entry.agent == agent


def owned(record: TaskRecord | None, who: identity.Caller, task_id: str) -> TaskRecord:
    """The record when it exists and belongs to the caller's tenant, else 404."""
    if record is None or record.tenant != who.tenant:
        raise errors.ClientError(404, "task_id", f"no task {task_id}", "not_found")
    return record


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    store = services.store
    settings = services.settings

    @routes.get("/tasks", response_model=TaskPage, responses={422: {}, 503: {}})
    async def list_tasks(
        who: Annotated[identity.Caller, Depends(identity.caller)],
        status: Annotated[list[TaskStatus] | None, Query()] = None,
        agent: Annotated[str | None, Query(max_length=64)] = None,
        created_after: Annotated[Timestamp | None, Query()] = None,
        created_before: Annotated[Timestamp | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    ) -> TaskPage:
        """The caller's tasks, newest first; `status` may repeat. Follow `next_cursor`."""
        newest = created_before.timestamp() if created_before else math.inf
        oldest = created_after.timestamp() if created_after else -math.inf
        # created_after later than created_before is an empty range: an empty page, no error
        position = Position.decode(cursor) if cursor else None
        if position is not None:
            newest = min(newest, position.created_at)
        wanted = {value.value for value in status or ()}
        found: list[IndexEntry] = []
        scanned = 0
        while True:
            page = await store.index_page(who.tenant, newest=newest, oldest=oldest, limit=CHUNK)
            scanned += page.scanned
            full = False
            for entry in page.entries:
                if position is not None and position.passed(entry):
                    continue
                position = Position(entry.created_at, entry.task_id)
                if matches(entry, wanted, agent):
                    found.append(entry)
                    if len(found) == limit:
                        full = True
                        break
            if full:
                more = True
                break
            if page.scanned < CHUNK or page.last is None:
                more = False  # the range is exhausted
                break
            position = Position(page.last[1], page.last[0])
            newest = position.created_at
            if scanned >= SCAN_BUDGET:
                more = True
                break
        records = await store.get_many([entry.task_id for entry in found])
        views = [record.view() for record in records if record is not None]
        return TaskPage(tasks=views, next_cursor=position.encode() if more and position else None)

    @routes.post(
        "/tasks/{task_id}/cancel",
        response_model=CancelAnswer,
        responses={202: {"model": CancelAnswer}, 404: {}, 409: {}, 503: {}},
    )
    async def cancel_task(
        task_id: Annotated[str, Path(max_length=tasks.TASK_ID_MAX)],
        who: Annotated[identity.Caller, Depends(identity.caller)],
    ) -> CancelAnswer | JSONResponse:
        """Cancel a queued task (200, `cancelled` at once) or a running one (202: its worker
        stops the agent within about a second); again is harmless. 409 once it ended."""
        owned(await store.get(task_id), who, task_id)
        outcome, previous = await store.cancel(
            task_id, now=time.time(), ttl_seconds=settings.task_result_ttl_seconds
        )
        if outcome == "missing":
            raise errors.ClientError(404, "task_id", f"no task {task_id}", "not_found")
        if outcome == "finished":
            return JSONResponse(
                {
                    "detail": [
                        {
                            "field": "task_id",
                            "msg": f"task {task_id} is {previous} already; nothing to cancel",
                            "type": "finished",
                        }
                    ],
                    "status": previous,
                },
                status_code=409,
            )
        if outcome == "cancelling":
            answer = CancelAnswer(task_id=task_id, status=TaskStatus.RUNNING, cancel_requested=True)
            return JSONResponse(answer.model_dump(mode="json"), status_code=202)
        return CancelAnswer(task_id=task_id, status=TaskStatus.CANCELLED, cancel_requested=True)

    @routes.get("/tasks/{task_id}/callbacks", response_model=CallbackAttempts, responses={404: {}})
    async def callback_attempts(
        task_id: Annotated[str, Path(max_length=tasks.TASK_ID_MAX)],
        who: Annotated[identity.Caller, Depends(identity.caller)],
    ) -> CallbackAttempts:
        """Every delivery attempt of the task's completion webhook, oldest first."""
        record = owned(await store.get(task_id), who, task_id)
        return CallbackAttempts(
            task_id=task_id,
            callback_url=record.callback_url,
            attempts=await store.callback_attempts(task_id),
        )

    return routes
