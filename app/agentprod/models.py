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


class TaskStatus(enum.StrEnum):
    """queued → running → done | failed; running → queued when an attempt fails and will retry."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED)


class TaskRequest(BaseModel):
    """POST /tasks body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user_id: str = Field(min_length=1, max_length=128, description="Who the task is for.")
    content: str = Field(min_length=1, description="The text the agent works on.")
    agent: str | None = Field(
        default=None,
        pattern=AGENT_NAME_PATTERN,
        description="Agent to run; the worker's default (AGENT) when omitted.",
    )
    metadata: dict[str, JSON] = Field(
        default_factory=dict, max_length=64, description="Free-form values handed to the agent."
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, JSON]) -> dict[str, JSON]:
        """Refuse what the store cannot encode (an integer beyond 64 bits) as a 422 here,
        instead of a 500 when the record is written."""
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError as error:
            raise ValueError(f"not storable as JSON: {error}") from None
        return value


class TaskAccepted(BaseModel):
    """202 answer to POST /tasks."""

    task_id: str
    status: TaskStatus


class TaskView(BaseModel):
    """GET /tasks/{task_id} answer."""

    task_id: str
    status: TaskStatus
    result: JSON | None = None
    error: str | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TaskMessage(BaseModel):
    """Body of a message on the request topic."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    user_id: str
    content: str
    agent: str | None = None
    metadata: dict[str, JSON] = Field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump())

    def queued_record(self, *, created_at: float) -> TaskRecord:
        """The `queued` record this message stands for: what a worker writes back when Redis
        lost the original."""
        return TaskRecord(
            task_id=self.task_id,
            user_id=self.user_id,
            content=self.content,
            agent=self.agent,
            metadata=self.metadata,
            status=TaskStatus.QUEUED,
            created_at=created_at,
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

    def view(self) -> TaskView:
        return TaskView(
            task_id=self.task_id,
            status=self.status,
            result=self.result,
            error=self.error,
            attempts=self.attempts,
            created_at=from_epoch(self.created_at),
            started_at=from_epoch(self.started_at) if self.started_at else None,
            finished_at=from_epoch(self.finished_at) if self.finished_at else None,
        )

    def message(self) -> TaskMessage:
        return TaskMessage(
            task_id=self.task_id,
            user_id=self.user_id,
            content=self.content,
            agent=self.agent,
            metadata=self.metadata,
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
    FINISHED = "finished"  # done or failed already: a duplicate or late redelivery
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


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
