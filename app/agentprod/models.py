"""The data that crosses process boundaries: HTTP bodies, the task record, queue messages.

`TaskRequest` is what a client posts; `TaskMessage` is the request-topic body a worker consumes;
`TaskRecord` is the Redis hash a task lives in; `ResultMessage` goes to the result topic for
downstream services (key = task_id, tag = status).
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

AGENT_NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
JSON = Any
#: The tenant of tasks submitted without authentication (and of records older than tenants).
OPEN_TENANT = "public"


class TaskStatus(enum.StrEnum):
    """queued → running → done | failed | cancelled; running → queued when an attempt fails
    and will retry; queued → cancelled when a cancel comes before a worker claims the task."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Priority(enum.StrEnum):
    """Which request topic a task goes to: workers take `high` tasks first (docs/api.md)."""

    HIGH = "high"
    NORMAL = "normal"


#: What `priority_topic` appends to the request topic's name.
PRIORITY_TOPIC_SUFFIX = "-high"


def priority_topic(request_topic: str) -> str:
    """The topic of `priority: high` tasks beside `request_topic`: `<request topic>-high` (the
    API, the workers and the operator agree on it through this function)."""
    return f"{request_topic}{PRIORITY_TOPIC_SUFFIX}"


class TaskRequest(BaseModel):
    """POST /tasks body."""

    model_config = ConfigDict(extra="forbid")  # no stripping: the schema says what is accepted

    user_id: str = Field(min_length=1, max_length=128, description="Who the task is for.")
    content: str = Field(min_length=1, description="The text the agent works on.")
    agent: str | None = Field(
        default=None,
        pattern=AGENT_NAME_PATTERN,
        description="Agent to run; the worker's default (AGENT) when omitted.",
    )
    metadata: dict[str, JSON] = Field(
        default_factory=dict,
        max_length=64,
        description="Free-form values handed to the agent (and the agent's parameters, e.g. "
        "`sleep_seconds`); bounded in size and depth, integers within 64 bits.",
    )
    deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Seconds from now the task must finish in, or fail with `deadline "
        "exceeded`; at most, and by default, the server's TASK_DEADLINE_SECONDS.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="http(s) URL a worker POSTs the signed result to when the task ends.",
    )
    priority: Priority = Field(
        default=Priority.NORMAL,
        description="`high`: queued on the pipeline's high-priority topic; a worker takes "
        "those first when a slot frees (and keeps one extra slot for them).",
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, JSON]) -> dict[str, JSON]:
        """Refuse what JSON cannot carry faithfully (an integer beyond 64 bits, NaN) as a 422
        naming the path, instead of a 500 (or a silent `null`) when the record is written."""
        problem = json_problem(value, path="metadata", max_depth=MAX_JSON_DEPTH)
        if problem:
            raise ValueError(problem)
        return value


#: Nesting no JSON value a task carries may exceed (the API's METADATA_MAX_DEPTH may be lower).
MAX_JSON_DEPTH = 64
#: Numbers a task's JSON may hold: the integers orjson (and most JSON decoders) carry, and
#: floats in the same range (so the OpenAPI schema can state one bound for both).
NUMBER_MIN, NUMBER_MAX = -(2**63), 2**64 - 1


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def json_problem(value: JSON, *, path: str, max_depth: int) -> str | None:
    """What makes `value` unfit to store as JSON — too deep, an integer beyond 64 bits, a
    non-finite float, a non-string key — named by its path (`metadata.a[2].b`); None if fit."""
    stack: list[tuple[JSON, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list) and depth >= max_depth:
            return f"{where}: nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or not _encodable(key):
                    return f"{where}: key {key!r} is not a valid Unicode string"
                stack.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            if not _encodable(item):
                return f"{where}: a string that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not NUMBER_MIN <= item <= NUMBER_MAX:
                return f"{where}: integer {item} is beyond 64 bits"
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return f"{where}: {item} is not a JSON number"
            if not NUMBER_MIN <= item <= NUMBER_MAX:
                return f"{where}: {item} is beyond the 64-bit range"
        else:
            return f"{where}: {type(item).__name__} is not JSON"
    return None


class TaskAccepted(BaseModel):
    """202 answer to POST /tasks."""

    task_id: str
    status: TaskStatus


class TaskView(BaseModel):
    """GET /tasks/{task_id} answer."""

    task_id: str
    status: TaskStatus
    agent: str | None = None
    result: JSON | None = None
    error: str | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    priority: Priority = Priority.NORMAL


class TaskMessage(BaseModel):
    """Body of a message on the request topic."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    tenant: str = OPEN_TENANT
    user_id: str
    content: str
    agent: str | None = None
    metadata: dict[str, JSON] = Field(default_factory=dict)
    deadline_at: float | None = None  # epoch seconds; None in messages older than deadlines
    callback_url: str | None = None
    priority: Priority = Priority.NORMAL

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump())

    def queued_record(self, *, created_at: float) -> TaskRecord:
        """The `queued` record this message stands for: what a worker writes back when Redis
        lost the original."""
        return TaskRecord(
            task_id=self.task_id,
            tenant=self.tenant,
            user_id=self.user_id,
            content=self.content,
            agent=self.agent,
            metadata=self.metadata,
            callback_url=self.callback_url,
            status=TaskStatus.QUEUED,
            created_at=created_at,
            deadline_at=self.deadline_at,
            priority=self.priority,
        )


class ResultMessage(BaseModel):
    """Body of a message on the result topic."""

    task_id: str
    user_id: str
    status: TaskStatus
    result: JSON | None = None
    error: str | None = None
    attempts: int
    finished_at: datetime

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def result_id(self) -> str:
        """`<task_id>:<attempts>`: the same for every copy of one outcome, so a downstream
        consumer de-duplicates the at-least-once result topic on it (or on task_id: a task
        has one terminal outcome)."""
        return f"{self.task_id}:{self.attempts}"

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class TaskRecord(BaseModel):
    """A task as the store keeps it (one Redis hash)."""

    task_id: str
    tenant: str = OPEN_TENANT  # whose task it is: only this tenant's keys see it
    user_id: str
    content: str
    agent: str | None = None
    metadata: dict[str, JSON] = Field(default_factory=dict)
    status: TaskStatus
    result: JSON | None = None
    error: str | None = None
    attempts: int = 0
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result_published: bool = False
    deadline_at: float | None = None  # epoch seconds: not finished by then → failed
    callback_url: str | None = None
    cancel_requested: bool = False
    priority: Priority = Priority.NORMAL

    def view(self) -> TaskView:
        return TaskView(
            task_id=self.task_id,
            status=self.status,
            agent=self.agent,
            result=self.result,
            error=self.error,
            attempts=self.attempts,
            created_at=from_epoch(self.created_at),
            started_at=from_epoch(self.started_at) if self.started_at else None,
            finished_at=from_epoch(self.finished_at) if self.finished_at else None,
            cancel_requested=self.cancel_requested and not self.status.finished,
            priority=self.priority,
        )

    def message(self) -> TaskMessage:
        return TaskMessage(
            task_id=self.task_id,
            tenant=self.tenant,
            user_id=self.user_id,
            content=self.content,
            agent=self.agent,
            metadata=self.metadata,
            deadline_at=self.deadline_at,
            callback_url=self.callback_url,
            priority=self.priority,
        )

    def result_message(self) -> ResultMessage:
        return ResultMessage(
            task_id=self.task_id,
            user_id=self.user_id,
            status=self.status,
            result=self.result,
            error=self.error,
            attempts=self.attempts,
            finished_at=from_epoch(self.finished_at or self.created_at),
        )


class ClaimOutcome(enum.StrEnum):
    """What a claim attempt found."""

    CLAIMED = "claimed"  # this worker now runs the task
    FINISHED = "finished"  # done, failed or cancelled already: a duplicate, a late redelivery,
    # or a task cancelled before any worker claimed it
    BUSY = "busy"  # another worker holds a live lease
    MISSING = "missing"  # no record: expired, or its submission was refused (503)
    LOST = "lost"  # no record and no refusal marker: Redis lost it (restart without AOF)
    ABANDONED = "abandoned"  # its workers were lost too often: failed now, result unpublished


@dataclasses.dataclass(frozen=True)
class Claim:
    """What `TaskStore.claim` found and did; `decisions.step_for` turns it into a step."""

    outcome: ClaimOutcome
    attempts: int
    result_published: bool
    lease_until: float = 0.0  # epoch seconds; set when CLAIMED or BUSY


@dataclasses.dataclass(frozen=True)
class Created:
    """Result of `TaskStore.create`."""

    task_id: str
    created: bool  # False: the Idempotency-Key was seen before (task_id is the earlier task)
    fingerprint_matches: bool = True
    confirmed: bool = True  # False: the earlier request with this key is still being submitted
    created_at: float | None = None  # of the earlier task (epoch seconds)
    over_cap: bool = False  # refused: the tenant has its cap of unfinished tasks already


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
