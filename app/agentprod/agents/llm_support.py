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
from typing import Any

from agentprod import store as stores
from agentprod.agents.base import AgentError, PermanentAgentError, RetryLater
from agentprod.llm import limits, routing
from agentprod.llm.calling import LLMService
from agentprod.llm.client import ProviderRejected, ProviderRetryLater, ProviderTransient
from agentprod.llm.config import LLMSettings, NotConfigured, load_llm_settings
from agentprod.settings import load_settings


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
    return {key: value for key, value in config.items() if key in fields}


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


def option_str(metadata: dict[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def option_float(metadata: dict[str, Any], name: str, default: float) -> float:
    value = metadata.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def option_int(metadata: dict[str, Any], name: str, default: int, *, high: int) -> int:
    value = metadata.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        return default
    return value
