"""`chat`: one model answer to the task's content, with how it was produced.

The route (fast or strong tier, and why) comes from `llm.routing`; the call goes through the
shared cache, the per-model rate limit and the ledger (`llm.calling`). Task metadata may carry
`model`, `task_type`, `system`, `temperature`, `max_tokens` and `cache` (true: cache even a
non-deterministic request; false: bypass the cache). The result:

    {"answer", "model_used", "tier", "route", "latency_ms", "model_latency_ms", "usage",
     "cost", "cached", "finish_reason"}

`usage` is null when the server reported none (never a made-up zero); `cost` (USD) is null
when the model has no configured price, 0 for a cache hit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agentprod.agents import llm_support
from agentprod.agents.base import AgentTask
from agentprod.llm import routing
from agentprod.llm.client import ChatRequest
from agentprod.llm.config import Tier
from agentprod.models import JSON

DEFAULT_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."
MAX_TOKENS_CAP = 8192


class ChatAgent:
    def __init__(self, config: dict[str, Any]) -> None:
        self._services = llm_support.ServiceHolder(config)

    async def run(self, task: AgentTask) -> JSON:
        started = time.perf_counter()
        async with llm_support.translated_errors():
            service = await self._services.get()
            settings = service.settings
            async with asyncio.timeout(settings.llm_task_deadline_seconds):
                meta = task.metadata
                chosen = routing.route(
                    task.content,
                    agent="chat",
                    fast_model=settings.model_for(Tier.FAST) or "",
                    strong_model=settings.model_for(Tier.STRONG) or "",
                    requested_model=llm_support.option_str(meta, "model"),
                    task_type=llm_support.option_str(meta, "task_type"),
                )
                request = ChatRequest(
                    model=chosen.model,
                    messages=[
                        {
                            "role": "system",
                            "content": llm_support.option_str(meta, "system") or DEFAULT_SYSTEM,
                        },
                        {"role": "user", "content": task.content},
                    ],
                    temperature=llm_support.option_float(
                        meta, "temperature", settings.llm_temperature
                    ),
                    max_tokens=llm_support.option_int(
                        meta, "max_tokens", settings.llm_max_tokens, high=MAX_TOKENS_CAP
                    ),
                )
                cache_flag = meta.get("cache")
                result = await service.call(
                    request,
                    tenant=task.tenant,
                    use_cache=cache_flag is not False,
                    cache_opt_in=cache_flag is True,
                )
        completion = result.completion
        return {
            "answer": completion.text,
            "model_used": chosen.model,
            "tier": chosen.tier.value,
            "route": chosen.reason,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "model_latency_ms": None if result.cached else completion.latency_ms,
            "usage": completion.usage.as_json() if completion.usage else None,
            "cost": result.cost_usd,
            "cached": result.cached,
            "finish_reason": completion.finish_reason,
        }
