"""One model call the way the agents make it: cache → rate limit → model → ledger → cache.

`LLMService` is built once per agent (lazily, inside the worker's event loop) from the
environment and a Redis client; `call` returns a `CallResult` or raises the client's
`ProviderError`s or `limits.RateLimited`, which the agents translate for the worker. Each call
that reaches the limiter is also counted in the group's provider signals (`signals`): ok,
throttled (429/503 from the provider) or limited (refused by the own rpm/tpm limiter).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agentprod import tracing
from agentprod.llm import caching, costs, limits, signals
from agentprod.llm.client import (
    ChatRequest,
    Completion,
    ModelClient,
    ProviderError,
    ProviderRetryLater,
)
from agentprod.llm.config import LLMSettings
from agentprod.llm.ledger import Ledger


@dataclasses.dataclass(frozen=True)
class CallResult:
    completion: Completion
    cached: bool
    latency_ms: float  # what this call took, a cache hit included
    cost_usd: float | None  # 0 for a cache hit: no tokens were bought

    @property
    def usage(self) -> costs.Usage | None:
        return self.completion.usage


class LLMService:
    def __init__(
        self,
        *,
        settings: LLMSettings,
        client: ModelClient,
        cache: caching.ResponseCache,
        limiter: limits.RateLimiter,
        ledger: Ledger,
        provider_signals: signals.ProviderSignals | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.limiter = limiter
        self.ledger = ledger
        self.signals = provider_signals

    @classmethod
    def build(cls, settings: LLMSettings, redis_client: Any) -> LLMService:
        return cls(
            settings=settings,
            client=ModelClient(settings),
            cache=caching.ResponseCache(
                redis_client,
                ttl_seconds=settings.llm_cache_ttl_seconds,
                max_entries=settings.llm_cache_max_entries,
            ),
            limiter=limits.RateLimiter(redis_client, rpm=settings.llm_rpm, tpm=settings.llm_tpm),
            ledger=Ledger(redis_client),
            provider_signals=signals.ProviderSignals(redis_client, group=settings.mq_group_agent),
        )

    async def close(self) -> None:
        await self.client.close()

    async def call(
        self,
        request: ChatRequest,
        *,
        tenant: str,
        use_cache: bool = True,
        cache_opt_in: bool = False,
        limit_seconds: float | None = None,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
    ) -> CallResult:
        """One call; with `on_delta` the answer is streamed to it as it comes (a cache hit
        hands it the whole text at once)."""
        with tracing.model_call_span(request.model) as span:
            result = await self._call(
                request,
                tenant=tenant,
                use_cache=use_cache,
                cache_opt_in=cache_opt_in,
                limit_seconds=limit_seconds,
                on_delta=on_delta,
            )
            tracing.record_model_call(
                span,
                cached=result.cached,
                input_tokens=result.usage.prompt_tokens if result.usage else None,
                output_tokens=result.usage.completion_tokens if result.usage else None,
                cost_usd=result.cost_usd,
            )
            return result

    async def _call(
        self,
        request: ChatRequest,
        *,
        tenant: str,
        use_cache: bool,
        cache_opt_in: bool,
        limit_seconds: float | None,
        on_delta: Callable[[str], Awaitable[None]] | None,
    ) -> CallResult:
        started = time.perf_counter()
        digest = None
        if use_cache and caching.cacheable(request, opt_in=cache_opt_in) and self.cache.enabled:
            digest = caching.cache_key(
                request, tenant=tenant, prompt_version=self.settings.llm_prompt_version
            )
            hit = await self.cache.get(digest)
            if hit is not None:
                await self.ledger.cache_hit(request.model, tenant)
                if on_delta is not None and hit.text:
                    await on_delta(hit.text)
                return CallResult(hit, True, _ms_since(started), 0.0)
            self.ledger.cache_miss(request.model)
        try:
            reservation = await self.limiter.reserve(
                request.model, tokens=limits.estimate_tokens(request.messages, request.max_tokens)
            )
        except limits.RateLimited:
            if self.signals is not None:
                await self.signals.limited()
            raise
        try:
            if on_delta is None:
                completion = await self.client.complete(request, limit_seconds=limit_seconds)
            else:
                completion = await self.client.stream(
                    request, on_delta=on_delta, limit_seconds=limit_seconds
                )
        except ProviderError as error:
            await self.ledger.error(request.model, type(error).__name__, tenant)
            if self.signals is not None and (
                isinstance(error, ProviderRetryLater) or error.status == 429
            ):
                await self.signals.throttled()
            raise
        usage = completion.usage
        signal_writes = (
            self.signals.ok_writes(
                call_ms=completion.latency_ms, tokens=usage.total_tokens if usage else None
            )
            if self.signals is not None
            else []
        )
        await self.limiter.settle(
            reservation, used_tokens=completion.usage.total_tokens if completion.usage else None
        )
        cost = costs.cost(completion.usage, self.settings.llm_prices.get(request.model))
        await self.ledger.call(
            request.model,
            usage=completion.usage,
            cost_usd=cost,
            latency_ms=completion.latency_ms,
            tenant=tenant,
            also=signal_writes,  # the ledger and the signals in one round trip
        )
        if digest is not None:
            await self.cache.put(digest, completion)
        return CallResult(completion, False, _ms_since(started), cost)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
