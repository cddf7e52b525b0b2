"""The `chat` and `planner` agents over the openai SDK with a scripted transport (no network).

Cases: chat's result shape and a cache hit on the repeat (no second model call); no usage from
the server stays null; 429 + Retry-After becomes `RetryLater`, a 400 a permanent failure, a
500 a retryable one; no model configured fails permanently naming the variable; the planner
repairs an invalid plan once, runs the tools (an unknown one fails alone) and falls back to a
direct answer when the plan stays invalid.
"""

import json
from collections.abc import Callable
from typing import Any

import fakeredis
import httpx2
import openai
import pytest
from agentprod.agents import llm_support
from agentprod.agents.base import AgentError, AgentTask, PermanentAgentError, RetryLater
from agentprod.agents.chat import ChatAgent
from agentprod.agents.planner import PlannerAgent
from agentprod.llm.calling import LLMService
from agentprod.llm.client import ModelClient
from agentprod.llm.config import LLMSettings

Handler = Callable[[dict[str, Any]], httpx2.Response]
ENV = {
    "OPENAI_BASE_URL": "http://model.test/v1",
    "OPENAI_API_KEY": "sk-unit-secret",
    "LLM_MODEL_FAST": "m-fast",
    "LLM_MODEL_STRONG": "m-strong",
    "LLM_PRICES": '{"m-fast": {"input": 1, "output": 2}}',
}


def answer(content: str = "", *, usage: bool = True, tool_args: str | None = None, model: str):
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_args is not None:
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "submit_plan", "arguments": tool_args},
            }
        ]
    body: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return httpx2.Response(200, json=body)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


class Scripted:
    """Records the request bodies and answers with `handler`."""

    def __init__(self, handler: Handler, *, redis_client: Any = None) -> None:
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.redis_client = redis_client  # None: a fresh in-process Redis per service

    def factory(self, settings: LLMSettings, redis_client: Any) -> LLMService:
        def respond(request: httpx2.Request) -> httpx2.Response:
            body = json.loads(request.content)
            self.requests.append(body)
            return self.handler(body)

        sdk = openai.AsyncOpenAI(
            api_key="test",
            base_url="http://model.test/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(respond)),
        )
        client = self.redis_client or fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        real = LLMService.build(settings, client)
        real.client = ModelClient(settings, client=sdk)
        return real


def agent_with(cls: type, script: Scripted) -> Any:
    agent = cls({})
    agent._services = llm_support.ServiceHolder({}, factory=script.factory)
    return agent


def task(content: str, **metadata: Any) -> AgentTask:
    return AgentTask(task_id="t1", user_id="u", content=content, metadata=metadata, attempt=1)


async def test_chat_result_and_cache_hit() -> None:
    script = Scripted(lambda body: answer("Paris.", model=body["model"]))
    chat = agent_with(ChatAgent, script)
    first = await chat.run(task("Capital of France?"))
    assert first["answer"] == "Paris."
    assert first["model_used"] == "m-fast"
    assert first["tier"] == "fast"
    assert first["route"] == "simple request"
    assert first["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert first["cost"] == 0.00002  # 10 x $1 + 5 x $2 per million tokens
    assert first["cached"] is False
    assert first["latency_ms"] >= 0
    again = await chat.run(task("Capital of France?"))
    assert again["cached"] is True
    assert again["answer"] == "Paris."
    assert again["cost"] == 0.0
    assert len(script.requests) == 1  # the repeat never reached the model
    assert script.requests[0]["temperature"] == 0.0


async def test_chat_routes_and_reports_missing_usage() -> None:
    script = Scripted(lambda body: answer("...", usage=False, model=body["model"]))
    result = await agent_with(ChatAgent, script).run(task("请比较 A 和 B"))
    assert result["model_used"] == "m-strong"
    assert result["route"] == "signal word 比较"
    assert result["usage"] is None
    assert result["cost"] is None  # neither usage nor a price


@pytest.mark.parametrize(
    ("status", "headers", "error", "after"),
    [
        (429, {"retry-after": "7"}, RetryLater, 7.0),
        (503, {"retry-after-ms": "1500"}, RetryLater, 1.5),
        (500, {}, AgentError, None),
        (400, {}, PermanentAgentError, None),
    ],
)
async def test_chat_provider_errors(
    status: int, headers: dict[str, str], error: type[AgentError], after: float | None
) -> None:
    script = Scripted(
        lambda body: httpx2.Response(status, headers=headers, json={"error": {"message": "no"}})
    )
    with pytest.raises(error) as raised:
        await agent_with(ChatAgent, script).run(task("hi"))
    assert type(raised.value) is error
    assert f"answered {status}: no" in str(raised.value)
    if after is not None:
        assert isinstance(raised.value, RetryLater)
        assert raised.value.after_seconds == after


async def test_no_model_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MODEL_FAST")
    monkeypatch.delenv("LLM_MODEL_STRONG")
    with pytest.raises(PermanentAgentError, match="LLM_MODEL_FAST"):
        await ChatAgent({}).run(task("hi"))


GOOD_PLAN = json.dumps(
    {
        "subtasks": [
            {
                "id": 1,
                "description": "multiply",
                "tool": "calculate",
                "args": {"expression": "25*4"},
            },
            {"id": 2, "description": "fly", "tool": "teleport", "args": {}},
        ]
    }
)


def planner_script(plans: list[str]) -> Scripted:
    remaining = list(plans)

    def handler(body: dict[str, Any]) -> httpx2.Response:
        if body.get("tool_choice"):
            return answer(tool_args=remaining.pop(0), model=body["model"])
        return answer("25 x 4 = 100.", model=body["model"])

    return Scripted(handler)


async def test_planner_repairs_then_executes() -> None:
    script = planner_script(["not json at all", GOOD_PLAN])
    result = await agent_with(PlannerAgent, script).run(task("算 25×4，然后瞬移"))  # noqa: RUF001
    assert result["plan_valid"] is True
    assert result["plan_attempts"] == 2
    assert [s["tool"] for s in result["plan"]["subtasks"]] == ["calculate", "teleport"]
    first, second = result["results"]
    assert first["ok"] is True
    assert first["output"]["value"] == 100
    assert second["ok"] is False
    assert "unknown tool" in second["error"]
    assert result["answer"] == "25 x 4 = 100."
    assert result["model_used"] == {"planner": "m-strong", "answer": "m-fast"}
    assert result["usage"]["total_tokens"] == 45  # three calls
    assert [c["step"] for c in result["calls"]] == ["plan", "plan", "answer"]
    plan_call = script.requests[0]
    assert plan_call["tool_choice"]["function"]["name"] == "submit_plan"
    enum = plan_call["tools"][0]["function"]["parameters"]["properties"]["subtasks"]["items"]
    assert enum["properties"]["tool"]["enum"] == ["calculate", "calendar"]
    assert "not json at all" in json.dumps(script.requests[1]["messages"])  # the repair


async def test_planner_falls_back_clearly() -> None:
    script = planner_script(["nope", '{"subtasks": []}'])
    result = await agent_with(PlannerAgent, script).run(task("plan something"))
    assert result["plan"] is None
    assert result["plan_valid"] is False
    assert result["fallback"] == "direct_answer"
    assert "subtasks" in result["plan_error"]
    assert result["results"] == []
    assert result["answer"]
