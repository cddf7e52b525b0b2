"""The agent interface, the schemas an agent declares, and the errors it raises to steer retries.

An agent class declares two pydantic models:

- `Config`: the keys of `AGENT_CONFIG` it reads (unknown keys are refused, so a typo fails the
  worker at start instead of being ignored);
- `Params`: the per-task parameters it reads from a task's `metadata`. Other metadata keys are
  the user's own data and pass through untouched; a known parameter with a bad value is
  refused (422 at the API, a permanent failure in the worker) — never retried.

The worker validates the parameters before the run and hands them over as `AgentTask.params`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from agentprod.models import JSON, OPEN_TENANT
from agentprod.progress import Progress, no_progress

#: Keys the runtime adds to an agent's config dict (never validated, never from AGENT_CONFIG).
RUNTIME_KEYS = frozenset({"redis_client"})


def json_integer(value: object) -> object:
    """An integer as JSON Schema has it: `5` and `5.0`, never `true`, `"5"` or `5.5`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Input should be a valid integer")
        return int(value)
    return value


#: The integer type of agent parameters: what the OpenAPI schema's `integer` admits.
JsonInt = Annotated[int, BeforeValidator(json_integer)]


class AgentConfig(BaseModel):
    """Base of an agent's `Config`: the AGENT_CONFIG keys it reads. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentParams(BaseModel):
    """Base of an agent's `Params`, read from a task's metadata; other metadata keys pass."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class OpenConfig(BaseModel):
    """The config of an agent that declares no `Config`: any JSON object."""

    model_config = ConfigDict(extra="allow", frozen=True)


P = TypeVar("P", bound=AgentParams)
C = TypeVar("C", bound=BaseModel)


def agent_config(model: type[C], config: dict[str, Any]) -> C:
    """Validate the AGENT_CONFIG part of a config dict (the runtime's own keys are left out)."""
    return model.model_validate({k: v for k, v in config.items() if k not in RUNTIME_KEYS})


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
    #: The agent's validated `Params` (the worker fills it in; None when built by hand).
    params: AgentParams | None = None

    def params_as(self, model: type[P]) -> P:
        """This task's parameters as the agent's `Params` (validated from metadata if needed;
        a bad value raises pydantic's ValidationError)."""
        if isinstance(self.params, model):
            return self.params
        return model.model_validate(self.metadata)

    #: Report a step to the task's event stream (GET /tasks/{id}/events); never raises.
    progress: Progress = no_progress


class Agent(Protocol):
    """Runs one task and returns a JSON-serialisable result.

    Raise `AgentError` (or any exception) to have the task retried, `PermanentAgentError` to
    fail it at once. Agents are built once per process with their config and must be safe to
    run concurrently. Classes may declare `Config` and `Params` (see the module docstring) and
    `test_only = True` for agents that only serve tests and benchmarks (off unless
    AGENTPROD_TEST_AGENTS is set).
    """

    async def run(self, task: AgentTask) -> JSON: ...


class AgentFactory(Protocol):
    def __call__(self, config: dict[str, Any]) -> Agent: ...


class DeclaredAgent:
    """Optional base for agent classes: the defaults of the declarations."""

    Config: ClassVar[type[BaseModel]] = AgentConfig
    Params: ClassVar[type[AgentParams]] = AgentParams
    test_only: ClassVar[bool] = False


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
