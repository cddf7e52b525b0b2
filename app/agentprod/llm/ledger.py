"""What the model layer has spent: calls, errors, tokens, cost and cache hits per model.

Written by the workers to one Redis hash (fields `<model>|<counter>`) so `GET /stats` sees the
whole fleet, and to Prometheus counters so each worker's `/metrics` shows its own share.
Best effort: a Redis error is logged, never a failed task.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from agentprod import keys
from agentprod.llm import counters
from agentprod.llm.costs import Usage

CALLS = Counter(
    "agentprod_llm_calls_total", "Model calls, by model and outcome.", ["model", "outcome"]
)
TOKENS = Counter(
    "agentprod_llm_tokens_total", "Tokens reported by the model server.", ["model", "direction"]
)
COST = Counter(
    "agentprod_llm_cost_usd_total", "Cost of the model calls (configured prices).", ["model"]
)
CACHE = Counter(
    "agentprod_llm_cache_total", "Response cache lookups, by result.", ["model", "result"]
)

COUNTERS = (
    "calls",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "calls_without_usage",
)


class Ledger:
    def __init__(self, client: Any) -> None:
        self._redis = client
        self._counters = counters.CounterWriter(client)

    async def call(
        self,
        model: str,
        *,
        usage: Usage | None,
        cost_usd: float | None,
        latency_ms: float,
        tenant: str | None = None,
        also: Sequence[counters.Write] = (),
    ) -> None:
        """Count a successful call; `also` (e.g. the provider signals) goes in the same write."""
        CALLS.labels(model, "ok").inc()
        fields: dict[str, float] = {"calls": 1, "latency_ms": latency_ms}
        if usage is None:
            fields["calls_without_usage"] = 1
        else:
            TOKENS.labels(model, "in").inc(usage.prompt_tokens)
            TOKENS.labels(model, "out").inc(usage.completion_tokens)
            fields["prompt_tokens"] = usage.prompt_tokens
            fields["completion_tokens"] = usage.completion_tokens
        if cost_usd is not None:
            COST.labels(model).inc(cost_usd)
            fields["cost_usd"] = cost_usd
        await self._add(model, fields, tenant, also)

    async def error(self, model: str, kind: str, tenant: str | None = None) -> None:
        CALLS.labels(model, kind).inc()
        await self._add(model, {"errors": 1}, tenant)

    async def cache_hit(self, model: str, tenant: str | None = None) -> None:
        CACHE.labels(model, "hit").inc()
        await self._add(model, {"cache_hits": 1}, tenant)

    def cache_miss(self, model: str) -> None:
        CACHE.labels(model, "miss").inc()

    async def _add(
        self,
        model: str,
        fields: dict[str, float],
        tenant: str | None,
        also: Sequence[counters.Write] = (),
    ) -> None:
        """Into the fleet's hash and, when known, the tenant's; `also` in the same round trip."""
        hashes = [keys.llm_usage()] + ([keys.llm_usage(tenant)] if tenant else [])
        writes: list[counters.Write] = [
            counters.Increment(key, f"{model}|{name}", amount)
            for name, amount in fields.items()
            for key in hashes
        ]
        await self._counters.apply([*writes, *also], what="usage ledger")

    async def read(self, tenant: str | None = None) -> dict[str, dict[str, float]]:
        """Per-model totals of the fleet or of one tenant:
        {model: {calls, errors, cache_hits, tokens..., cost_usd, ...}}."""
        raw = await self._redis.hgetall(keys.llm_usage(tenant))
        return summarize(raw)


def summarize(raw: dict[Any, Any]) -> dict[str, dict[str, float]]:
    """The ledger hash as per-model totals, with the mean latency of the calls (pure)."""
    models: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in raw.items():
        field = key.decode() if isinstance(key, bytes) else str(key)
        model, _, name = field.rpartition("|")
        number = float(value.decode() if isinstance(value, bytes) else value)
        models[model][name] = int(number) if number.is_integer() and name != "cost_usd" else number
    out: dict[str, dict[str, float]] = {}
    for model, values in sorted(models.items()):
        totals = {name: values.get(name, 0) for name in COUNTERS}
        totals["total_tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
        totals["cost_usd"] = round(float(values.get("cost_usd", 0.0)), 8)
        calls = totals["calls"]
        totals["mean_latency_ms"] = round(values.get("latency_ms", 0.0) / calls, 1) if calls else 0
        out[model] = totals
    return out
