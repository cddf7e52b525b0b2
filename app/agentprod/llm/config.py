"""Model configuration from the environment: where the model server is and which ids to use.

Names are the conventional ones (`OPENAI_BASE_URL`, `OPENAI_API_KEY`) plus the seed's
`GEMINI_API_KEY`: with only that key set, the base URL defaults to Google's OpenAI-compatible
endpoint. Model ids live here only (`LLM_MODEL_FAST`, `LLM_MODEL_STRONG`), never in code; the
seed's gemini-1.5 ids no longer exist. A missing model makes `require()` raise `NotConfigured`
naming the variable to set, which the API turns into a 503 and the agents into a failed task.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

GEMINI_OPENAI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


class Tier(enum.StrEnum):
    FAST = "fast"
    STRONG = "strong"


class NotConfigured(RuntimeError):
    """No model is configured; the message names the variable to set."""

    def __init__(self, variable: str, detail: str) -> None:
        super().__init__(f"{detail}: set {variable}")
        self.variable = variable


class Price(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class LLMSettings(BaseSettings):
    """The model layer's knobs; every field is an environment variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    openai_base_url: str | None = None
    openai_api_key: str | None = None
    gemini_api_key: str | None = None
    llm_model_fast: str | None = None
    llm_model_strong: str | None = None
    #: Per-call timeout (the SDK's default is 10 minutes).
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    #: SDK-level retries of one call; task-level retries (redelivery) do the rest.
    llm_max_retries: int = Field(default=0, ge=0, le=5)
    #: Budget of one agent run (all its calls and tools).
    llm_task_deadline_seconds: float = Field(default=240.0, gt=0)
    llm_max_tokens: int = Field(default=256, ge=1, le=32768)
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    #: `{"model-id": {"input": usd_per_mtok, "output": usd_per_mtok}}`; unknown → cost absent.
    llm_prices: dict[str, Price] = Field(default_factory=dict)
    #: Requests / tokens per minute per model, shared by all workers; 0 = no limit.
    llm_rpm: int = Field(default=0, ge=0)
    llm_tpm: int = Field(default=0, ge=0)
    #: The worker's consumer group (the operator sets it): its model-side signals are kept
    #: under it for the operator's scaler (`agentprod.llm.signals`).
    mq_group_agent: str = "GID_AGENT_PYTHON"
    llm_cache_ttl_seconds: int = Field(default=3600, ge=0)  # 0 disables the cache
    llm_cache_max_entries: int = Field(default=10_000, ge=1)
    #: Bumped when prompts change, so old cached answers stop matching.
    llm_prompt_version: str = "1"
    #: Longest Retry-After honoured; longer waits are capped to this.
    llm_retry_after_max_seconds: int = Field(default=600, ge=1, le=43200)
    #: Back ends of the `search` / `weather` tools (GET ?query= / ?location=); unset: not offered.
    llm_search_url: str | None = None
    llm_weather_url: str | None = None
    llm_tool_timeout_seconds: float = Field(default=10.0, gt=0)
    #: The model client's HTTP transport: `aiohttp` (the SDK's aiohttp transport, its advice
    #: for many concurrent calls) or `httpx` (the SDK's default). httpx's pool scans every
    #: connection on each request: a quarter of a 256-slot worker's CPU (docs/benchmarks.md).
    llm_http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    #: The worker's slots (the same variables as the worker's): the model client keeps one
    #: connection per slot open, so a busy worker never reconnects per call.
    worker_concurrency: int = Field(default=8, ge=1, le=1024)
    worker_priority_slots: int = Field(default=1, ge=1, le=1024)

    @property
    def model_connections(self) -> int:
        """Connections the model client may hold open: one per task the worker can run."""
        return self.worker_concurrency + self.worker_priority_slots

    @property
    def base_url(self) -> str | None:
        if self.openai_base_url:
            return self.openai_base_url
        if self.gemini_api_key and not self.openai_api_key:
            return GEMINI_OPENAI_BASE_URL
        return None

    @property
    def api_key(self) -> str | None:
        return self.openai_api_key or self.gemini_api_key

    def model_for(self, tier: Tier) -> str | None:
        """The configured id of a tier; a missing tier falls back to the other one."""
        fast, strong = self.llm_model_fast, self.llm_model_strong
        return (fast or strong) if tier is Tier.FAST else (strong or fast)

    @property
    def models(self) -> list[str]:
        return sorted({m for m in (self.llm_model_fast, self.llm_model_strong) if m})

    def require(self) -> None:
        """Raise `NotConfigured` unless a model, a key and an endpoint are known."""
        if not self.llm_model_fast and not self.llm_model_strong:
            raise NotConfigured("LLM_MODEL_FAST", "no model configured")
        if not self.api_key:
            raise NotConfigured("OPENAI_API_KEY", "no API key configured (or GEMINI_API_KEY)")

    def describe(self) -> dict[str, Any]:
        """What `GET /models` shows: tiers, ids, prices; never a key."""
        tiers = {tier.value: self.model_for(tier) for tier in Tier}
        return {
            "configured": bool(self.models) and bool(self.api_key),
            "base_url": self.base_url or "https://api.openai.com/v1",
            "tiers": tiers,
            "models": [
                {
                    "id": model,
                    "tiers": sorted(t for t, m in tiers.items() if m == model),
                    "price_per_mtok": (
                        self.llm_prices[model].model_dump() if model in self.llm_prices else None
                    ),
                }
                for model in self.models
            ],
            "tools": tool_names(self),
        }


def tool_names(settings: LLMSettings) -> list[str]:
    """Tools offered to the planner: the local ones, plus the configured HTTP ones."""
    names = ["calculate", "calendar"]
    if settings.llm_search_url:
        names.append("search")
    if settings.llm_weather_url:
        names.append("weather")
    return names


def load_llm_settings(**overrides: Any) -> LLMSettings:
    """Read the environment; a bad value raises ValueError naming the variable."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return LLMSettings(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise ValueError(f"invalid model configuration: {problems}") from None
    except SettingsError as error:
        raise ValueError(f"invalid model configuration: {error}") from None
