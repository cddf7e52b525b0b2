"""Tools and the executor's dispatch: safe arithmetic, the clock, HTTP back ends, bad subtasks."""

import asyncio

import httpx
import pytest
from agentprod.llm import tools
from agentprod.llm.config import LLMSettings

NOON_UTC = 1_767_268_800.0  # 2026-01-01T12:00:00Z, a Thursday


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("25*4", 100),
        ("25×4", 100),  # noqa: RUF001 - the seed's multiplication sign
        ("(1+2)*3", 9),
        ("2^10", 1024),
        ("7/2", 3.5),
        ("sqrt(16) + abs(-2)", 6),
        ("100 / 4 =", 25),
        ("\uff11\uff12 + 1", 13),  # full-width digits
    ],
)
def test_evaluate(expression: str, value: float) -> None:
    assert tools.evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        '__import__("os").system("true")',
        "open('/etc/passwd')",
        "9**9**9**9",
        "x + 1",
        "'a' * 3",
        "1 +",
        "1" * 300,
        "True",
    ],
)
def test_evaluate_refuses(expression: str) -> None:
    with pytest.raises(tools.ToolError):
        tools.evaluate(expression)


async def test_calendar_reads_the_clock() -> None:
    calendar = tools.Calendar(clock=lambda: NOON_UTC)
    now = await calendar.run({})
    assert now["date"] == "2026-01-01"
    assert now["weekday"] == "Thursday"
    later = await calendar.run({"timezone": "Asia/Shanghai", "days": 1})
    assert later["datetime"] == "2026-01-02T20:00:00+08:00"
    with pytest.raises(tools.ToolError, match="time zone"):
        await calendar.run({"timezone": "Mars/Olympus"})
    with pytest.raises(tools.ToolError, match="days"):
        await calendar.run({"days": "two"})


def toolbox_with_http(handler: httpx.MockTransport) -> tools.ToolBox:
    weather = tools.HttpTool(
        name="weather",
        description="w",
        url="http://weather.test/now",
        param="location",
        timeout_seconds=1,
        transport=handler,
    )
    return tools.ToolBox([tools.Calculate(), weather])


async def test_dispatch_outcomes() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["location"] == "Nowhere":
            return httpx.Response(404, json={"error": "unknown place"})
        return httpx.Response(200, json={"location": request.url.params["location"], "c": 21})

    box = toolbox_with_http(httpx.MockTransport(answer))
    assert box.names == ["calculate", "weather"]
    ok = await box.run("calculate", {"expression": "6*7"}, limit_seconds=1)
    assert ok.ok
    assert ok.output == {"expression": "6*7", "value": 42}
    sunny = await box.run("weather", {"location": "Beijing"}, limit_seconds=1)
    assert sunny.ok
    assert sunny.output == {"location": "Beijing", "c": 21}
    failures = [
        await box.run("teleport", {}, limit_seconds=1),
        await box.run("calculate", {"expr": "1"}, limit_seconds=1),
        await box.run("calculate", {"expression": "x"}, limit_seconds=1),
        await box.run("weather", {"location": "Nowhere"}, limit_seconds=1),
    ]
    assert [f.ok for f in failures] == [False] * 4
    assert "unknown tool 'teleport'" in (failures[0].error or "")
    assert "expression" in (failures[1].error or "")
    assert "404" in (failures[3].error or "")


async def test_slow_tool_times_out_visibly() -> None:
    class Slow:
        name = "slow"
        description = "sleeps"
        parameters: dict[str, object] = {}  # noqa: RUF012

        async def run(self, args: dict[str, object]) -> object:
            await asyncio.sleep(5)
            return None

    outcome = await tools.ToolBox([Slow()]).run("slow", {}, limit_seconds=0.05)
    assert not outcome.ok
    assert "longer than" in (outcome.error or "")


def test_http_tools_only_when_configured() -> None:
    assert tools.default_toolbox(LLMSettings(_env_file=None)).names == ["calculate", "calendar"]
    both = LLMSettings(
        _env_file=None, llm_search_url="http://s.test", llm_weather_url="http://w.test"
    )
    assert tools.default_toolbox(both).names == ["calculate", "calendar", "search", "weather"]
