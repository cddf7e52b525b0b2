"""What the `chat` and `planner` agents share: building the model service, reading a task's
request options, and turning model-layer failures into the worker's error vocabulary.

Failure mapping (the worker acts on the agent errors):
- `ProviderRetryLater` (429/503 + Retry-After) and `RateLimited` → `RetryLater(after_seconds)`:
  the task is put back for that long;
- `ProviderTransient` (5xx, timeouts, connection) and a blown task deadline → `AgentError`:
  retried with backoff, failed visibly after the last attempt;
- `ProviderRejected` (other 4xx), `NotConfigured`, `UnknownModel` → `PermanentAgentError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from agentprod import store as stores
from agentprod.agents.base import (
    RUNTIME_KEYS,
    AgentError,
    AgentParams,
    PermanentAgentError,
    RetryLater,
    json_integer,
)
from agentprod.llm import limits, routing
from agentprod.llm.calling import LLMService
from agentprod.llm.client import ProviderRejected, ProviderRetryLater, ProviderTransient
from agentprod.llm.config import LLMSettings, NotConfigured, load_llm_settings
from agentprod.settings import load_settings

MAX_TOKENS_CAP = 8192
MAX_SYSTEM_CHARS = 32_768

#: A request option: surrounding blanks dropped; blank means "not given".
#: Bounds inside the type, so the optional field's schema carries them (`minimum`/`maximum`).
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_CAP), BeforeValidator(json_integer)]
Option = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256, strict=True)]


class LLMAgentConfig(BaseModel):
    """AGENT_CONFIG of the model-calling agents: `redis_url` and any model setting by its
    field name (`{"llm_max_tokens": 64}`); other keys are refused."""

    model_config = ConfigDict(extra="allow", frozen=True)
    #: The keys it takes besides its fields (for the registry's sharing of AGENT_CONFIG).
    extra_keys: ClassVar[frozenset[str]] = frozenset(LLMSettings.model_fields)

    redis_url: str | None = Field(default=None, strict=True)

    @model_validator(mode="after")
    def _model_settings(self) -> LLMAgentConfig:
        given = self.model_extra or {}
        unknown = sorted(set(given) - set(LLMSettings.model_fields))
        if unknown:
            raise ValueError(
                f"unknown key {', '.join(unknown)}: allowed are redis_url and the model "
                f"settings ({', '.join(sorted(LLMSettings.model_fields))})"
            )
        load_llm_settings(**given)  # a bad value raises ValueError naming the setting
        return self


class RouteParams(AgentParams):
    """Per-task options of every model-calling agent (metadata keys)."""

    model: Option | None = Field(
        default=None, description="a configured model id (overrides the routing)"
    )
    task_type: Option | None = Field(
        default=None, description="simple/fast or complex/strong/reasoning picks the tier"
    )


class ChatParams(RouteParams):
    system: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, max_length=MAX_SYSTEM_CHARS, strict=True)
        ]
        | None
    ) = Field(default=None, description="the system prompt")
    temperature: float | None = Field(
        default=None, ge=0, le=2, strict=True, allow_inf_nan=False, description="0 to 2"
    )
    max_tokens: MaxTokens | None = Field(default=None, description="answer length cap")
    cache: bool | None = Field(
        default=None,
        strict=True,
        description="true: cache even a non-deterministic request; false: bypass the cache",
    )
    stream: bool | None = Field(
        default=None,
        strict=True,
        description="true: stream the answer, reported as `tokens` events of the task",
    )


def blank_to_none(value: str | None) -> str | None:
    return value or None


def redis_for(config: dict[str, Any]) -> Any:
    """The Redis client for cache, limits and ledger: `config["redis_client"]` (the runtime's
    own, e.g. the embedded one of `agentprod dev`) or a new one from REDIS_URL/REDIS_HOST."""
    given = config.get("redis_client")
    if given is not None:
        return given
    return stores.connect(str(config.get("redis_url") or load_settings().redis_dsn))


class ServiceHolder:
    """Builds the `LLMService` on first use, inside the running event loop, once."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        factory: Callable[[LLMSettings, Any], LLMService] = LLMService.build,  # tests
    ) -> None:
        self._config = config
        self._factory = factory
        self._service: LLMService | None = None
        self._lock = asyncio.Lock()
        self.settings = load_llm_settings(**_llm_overrides(config))

    async def get(self) -> LLMService:
        if self._service is None:
            async with self._lock:
                if self._service is None:
                    try:
                        self.settings.require()
                    except NotConfigured as error:
                        raise PermanentAgentError(str(error)) from None
                    self._service = self._factory(self.settings, redis_for(self._config))
        return self._service


def _llm_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """AGENT_CONFIG keys that name LLMSettings fields (`{"llm_max_tokens": 64}`) win."""
    fields = LLMSettings.model_fields
    return {
        key: value for key, value in config.items() if key in fields and key not in RUNTIME_KEYS
    }


@contextlib.asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Re-raise model-layer failures as the agent errors the worker understands."""
    try:
        yield
    except ProviderRetryLater as error:
        raise RetryLater(str(error), after_seconds=error.after_seconds) from error
    except limits.RateLimited as error:
        raise RetryLater(str(error), after_seconds=error.after_seconds) from error
    except ProviderRejected as error:
        raise PermanentAgentError(str(error)) from error
    except ProviderTransient as error:
        raise AgentError(str(error)) from error
    except routing.UnknownModel as error:
        raise PermanentAgentError(str(error)) from error
    except TimeoutError as error:
        raise AgentError("task deadline exceeded (LLM_TASK_DEADLINE_SECONDS)") from error
