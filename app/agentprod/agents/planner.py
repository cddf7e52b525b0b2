"""`planner`: the seed's multi-agent flow — plan, execute the tools, write the final answer.

1. **Plan** (strong tier unless the request says otherwise): a forced `submit_plan` tool call
   whose arguments must match `llm.plans.plan_schema` — subtasks, each naming one of the tools
   on offer with its arguments.
2. **Validate, repair, fall back**: the answer is parsed leniently and validated; an invalid
   plan is sent back once with the problem (`plan_attempts` says how many were needed). If it is
   still invalid the task does not fail: `plan` is null, `plan_error` says why and
   `fallback: "direct_answer"` marks that the answer below was written without tools.
3. **Execute**: a deterministic executor runs each subtask's tool in order (no model call).
   An unknown tool or bad arguments fail that subtask (`ok: false`, `error`), not the task.
4. **Answer** (fast tier): the model writes the final answer from the query and tool results.

The result carries the plan, every subtask's outcome, the answer, the models used, the route,
summed `usage` and `cost`, `cached` (true only when every call was a cache hit), `latency_ms`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from agentprod.agents import llm_support
from agentprod.agents.base import AgentTask, DeclaredAgent, agent_config
from agentprod.llm import costs, plans, routing, tools
from agentprod.llm.calling import CallResult, LLMService
from agentprod.llm.client import ChatRequest
from agentprod.llm.config import Tier
from agentprod.models import JSON

PLAN_MAX_TOKENS = 384
PLAN_ATTEMPTS = 2  # the first plan and one repair
ANSWER_SYSTEM = (
    "You write the final answer to the user's request from the results of the tools that were "
    "run for it. Use the tool results; say so when a tool failed. Be brief."
)
DIRECT_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."


class PlannerAgent(DeclaredAgent):
    Config = llm_support.LLMAgentConfig
    Params = llm_support.RouteParams

    def __init__(self, config: dict[str, Any]) -> None:
        agent_config(llm_support.LLMAgentConfig, config)
        self._services = llm_support.ServiceHolder(config)
        self._toolbox = tools.default_toolbox(self._services.settings)

    async def run(self, task: AgentTask) -> JSON:
        started = time.perf_counter()
        async with llm_support.translated_errors():
            service = await self._services.get()
            async with asyncio.timeout(service.settings.llm_task_deadline_seconds):
                body = await self._run(service, task)
        body["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return body

    async def _run(self, service: LLMService, task: AgentTask) -> dict[str, Any]:
        settings = service.settings
        params = task.params_as(llm_support.RouteParams)
        tenant = task.tenant
        chosen = routing.route(
            task.content,
            agent="planner",
            fast_model=settings.model_for(Tier.FAST) or "",
            strong_model=settings.model_for(Tier.STRONG) or "",
            requested_model=llm_support.blank_to_none(params.model),
            task_type=llm_support.blank_to_none(params.task_type),
        )
        calls: list[tuple[str, CallResult]] = []
        names = self._toolbox.names
        messages = plans.planner_messages(task.content, self._toolbox.describe())
        plan: plans.Plan | None = None
        problem = ""
        attempts = 0
        for attempts in range(1, PLAN_ATTEMPTS + 1):  # noqa: B007 - attempts is reported
            result = await service.call(
                ChatRequest(
                    model=chosen.model,
                    messages=messages,
                    temperature=0.0,
                    max_tokens=PLAN_MAX_TOKENS,
                    tools=[plans.plan_tool(names)],
                    tool_choice={"type": "function", "function": {"name": plans.PLAN_TOOL}},
                ),
                tenant=tenant,
            )
            calls.append(("plan", result))
            raw = plans.plan_text(result.completion.text, result.completion.tool_calls)
            try:
                plan = plans.parse_plan(raw)
                break
            except plans.PlanError as error:
                problem = str(error)
                messages = plans.repair_messages(messages, raw, problem)
        await task.progress(
            "plan",
            {
                "valid": plan is not None,
                "attempts": attempts,
                "subtasks": plan.model_dump()["subtasks"] if plan is not None else [],
                "error": None if plan is not None else problem,
            },
        )
        outcomes: list[dict[str, Any]] = []
        if plan is not None:
            for subtask in plan.subtasks:
                await task.progress("subtask_started", {"id": subtask.id, "tool": subtask.tool})
                outcome = await self._toolbox.run(
                    subtask.tool, subtask.args, limit_seconds=settings.llm_tool_timeout_seconds
                )
                outcomes.append({"id": subtask.id, **outcome.as_json()})
                await task.progress("subtask_finished", {"id": subtask.id, **outcome.as_json()})
        answer_model = settings.model_for(Tier.FAST) or chosen.model
        final = await service.call(
            _answer_request(answer_model, task.content, outcomes, plan, settings.llm_max_tokens),
            tenant=tenant,
        )
        calls.append(("answer", final))
        usage: costs.Usage | None = None
        cost: float | None = None
        for _, call in calls:
            usage = costs.add(usage, call.usage)
            cost = costs.add_costs(cost, call.cost_usd)
        return {
            "plan": plan.model_dump() if plan is not None else None,
            "plan_valid": plan is not None,
            "plan_attempts": attempts,
            "plan_error": None if plan is not None else problem,
            "fallback": None if plan is not None else "direct_answer",
            "tools_offered": names,
            "results": outcomes,
            "answer": final.completion.text,
            "model_used": {"planner": chosen.model, "answer": answer_model},
            "tier": chosen.tier.value,
            "route": chosen.reason,
            "usage": usage.as_json() if usage else None,
            "cost": cost,
            "cached": all(call.cached for _, call in calls),
            "calls": [
                {
                    "step": step,
                    "model": call.completion.model,
                    "cached": call.cached,
                    "latency_ms": call.latency_ms,
                    "usage": call.usage.as_json() if call.usage else None,
                }
                for step, call in calls
            ],
        }


def _answer_request(
    model: str,
    query: str,
    outcomes: list[dict[str, Any]],
    plan: plans.Plan | None,
    max_tokens: int,
) -> ChatRequest:
    if plan is None:
        messages = [
            {"role": "system", "content": DIRECT_SYSTEM},
            {"role": "user", "content": query},
        ]
    else:
        results = json.dumps(outcomes, ensure_ascii=False, default=str)[:6000]
        messages = [
            {"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": f"Request: {query}\nTool results: {results}"},
        ]
    return ChatRequest(model=model, messages=messages, temperature=0.0, max_tokens=max_tokens)
