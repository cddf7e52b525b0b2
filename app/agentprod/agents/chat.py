"""`chat`: one model answer to the task's content, with how it was produced.

The route (fast or strong tier, and why) comes from `llm.routing`; the call goes through the
shared cache, the per-model rate limit and the ledger (`llm.calling`). Task metadata may carry
`model`, `task_type`, `system`, `temperature`, `max_tokens`, `cache` (true: cache even a
non-deterministic request; false: bypass the cache) and `stream` (true: stream the answer from
the model and report it as `tokens` events on the task's event stream). The result:

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
from agentprod.agents.base import AgentTask, DeclaredAgent, agent_config
from agentprod.llm import routing
from agentprod.llm.client import ChatRequest
from agentprod.llm.config import Tier
from agentprod.models import JSON
from agentprod.progress import TokenEvents

DEFAULT_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."
MAX_TOKENS_CAP = llm_support.MAX_TOKENS_CAP


class ChatAgent(DeclaredAgent):
    Config = llm_support.LLMAgentConfig
    Params = llm_support.ChatParams

    def __init__(self, config: dict[str, Any]) -> None:
        agent_config(llm_support.LLMAgentConfig, config)
        self._services = llm_support.ServiceHolder(config)

    async def run(self, task: AgentTask) -> JSON:
        started = time.perf_counter()
        async with llm_support.translated_errors():
            service = await self._services.get()
            settings = service.settings
            async with asyncio.timeout(settings.llm_task_deadline_seconds):
                params = task.params_as(llm_support.ChatParams)
                chosen = routing.route(
                    task.content,
                    agent="chat",
                    fast_model=settings.model_for(Tier.FAST) or "",
                    strong_model=settings.model_for(Tier.STRONG) or "",
                    requested_model=llm_support.blank_to_none(params.model),
                    task_type=llm_support.blank_to_none(params.task_type),
                )
                request = ChatRequest(
                    model=chosen.model,
                    messages=[
                        {
                            "role": "system",
                            "content": params.system or DEFAULT_SYSTEM,
                        },
                        {"role": "user", "content": task.content},
                    ],
                    temperature=(
                        settings.llm_temperature
                        if params.temperature is None
                        else params.temperature
                    ),
                    max_tokens=params.max_tokens or settings.llm_max_tokens,
                )
                cache_flag = params.cache
                tokens = TokenEvents(task.progress) if params.stream is True else None
                result = await service.call(
                    request,
                    tenant=task.tenant,
                    use_cache=cache_flag is not False,
                    cache_opt_in=cache_flag is True,
                    on_delta=tokens.add if tokens is not None else None,
                )
                if tokens is not None:
                    await tokens.flush()
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
