"""The agent interface and the errors an agent raises to steer retries."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from agentprod.models import JSON, OPEN_TENANT


@dataclasses.dataclass(frozen=True)
class AgentTask:
    """What an agent sees of a task."""

    task_id: str
    user_id: str
    content: str
    metadata: dict[str, JSON]
    attempt: int  # 1 on the first run, +1 per redelivery
    #: Whose task it is (set by the API from the caller's key, never from the metadata): the
    #: scope of the response cache and of the usage figures.
    tenant: str = OPEN_TENANT


class Agent(Protocol):
    """Runs one task and returns a JSON-serialisable result.

    Raise `AgentError` (or any exception) to have the task retried, `PermanentAgentError` to
    fail it at once. Agents are built once per process with their config and must be safe to
    run concurrently.
    """

    async def run(self, task: AgentTask) -> JSON: ...


class AgentFactory(Protocol):
    def __call__(self, config: dict[str, Any]) -> Agent: ...


class AgentError(Exception):
    """A failed attempt that may succeed when retried."""


class PermanentAgentError(AgentError):
    """A failure retrying cannot fix (bad input): the task fails without further attempts."""


class RetryLater(AgentError):
    """A failure to retry after a given wait (a provider's 429/503 Retry-After, a rate limit).

    The worker puts the task back for `after_seconds` (the message's invisible duration)
    instead of its exponential backoff, so no worker slot is held while waiting.
    """

    def __init__(self, message: str, *, after_seconds: float) -> None:
        super().__init__(message)
        self.after_seconds = after_seconds
