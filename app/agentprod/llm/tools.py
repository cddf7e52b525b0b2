"""Tools the planner's subtasks name, behind one interface, and the executor's dispatch.

- `calculate`: an arithmetic expression, evaluated by simpleeval (never `eval`): numbers,
  + - * / // % **, parentheses and a few math functions; the multiplication and division
  signs and full-width digits and operators are accepted.
- `calendar`: the date, time and weekday from the clock (a time zone may be given), or the
  date a number of days away.
- `search` and `weather`: GET a configurable HTTP back end (`LLM_SEARCH_URL?query=`,
  `LLM_WEATHER_URL?location=`) and return its JSON. They exist only when configured: no data
  is ever invented.

`ToolBox.run` never raises for a bad subtask: an unknown tool, bad arguments or a failing back
end become a failed `ToolOutcome` that the plan's result shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
import simpleeval

from agentprod.llm.config import LLMSettings

MAX_EXPRESSION_CHARS = 200
_TRANSLATE = str.maketrans(
    # multiplication and division signs; full-width parentheses, operators and digits
    {"\u00d7": "*", "\u00f7": "/", "\uff08": "(", "\uff09": ")", "\uff0d": "-", "\uff0b": "+"}
    | {"\uff0a": "*", "\uff0f": "/"}
    | {chr(0xFF10 + digit): str(digit) for digit in range(10)}
)
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
}
_NAMES = {"pi": math.pi, "e": math.e}


class ToolError(ValueError):
    """The arguments are wrong or the tool could not answer."""


class Tool(Protocol):
    name: str
    description: str
    #: JSON schema of the arguments object.
    parameters: dict[str, Any]

    async def run(self, args: dict[str, Any]) -> Any: ...


@dataclasses.dataclass(frozen=True)
class ToolOutcome:
    tool: str
    ok: bool
    output: Any = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "ok": self.ok, "output": self.output, "error": self.error}


def _string_arg(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"argument {name!r} must be a non-empty string")
    return value.strip()


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression (pure; raises ToolError when it is not one)."""
    text = expression.translate(_TRANSLATE).replace("^", "**").strip().rstrip("=").strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        value = simpleeval.simple_eval(text, functions=_FUNCTIONS, names=_NAMES)
    except Exception as error:  # simpleeval raises many kinds (syntax, names, limits)
        raise ToolError(f"cannot evaluate {expression!r}: {error}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"{expression!r} is not a number")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


class Calculate:
    name = "calculate"
    description = 'Evaluate an arithmetic expression, e.g. {"expression": "25*4"}.'
    parameters: dict[str, Any] = {  # noqa: RUF012 - read-only schema
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    }

    async def run(self, args: dict[str, Any]) -> Any:
        expression = _string_arg(args, "expression")
        return {"expression": expression, "value": evaluate(expression)}


class Calendar:
    name = "calendar"
    description = (
        "Current date, time and weekday, optionally in a time zone and a number of days ahead, "
        'e.g. {"timezone": "Asia/Shanghai", "days": 1}.'
    )
    parameters: dict[str, Any] = {  # noqa: RUF012 - read-only schema
        "type": "object",
        "properties": {"timezone": {"type": "string"}, "days": {"type": "integer"}},
    }

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def run(self, args: dict[str, Any]) -> Any:
        zone_name = args.get("timezone") or "UTC"
        try:
            zone = zoneinfo.ZoneInfo(str(zone_name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"unknown time zone {zone_name!r}") from None
        days = args.get("days", 0)
        if isinstance(days, bool) or not isinstance(days, int) or abs(days) > 36500:
            raise ToolError("argument 'days' must be an integer within 100 years")
        moment = dt.datetime.fromtimestamp(self._clock(), tz=zone) + dt.timedelta(days=days)
        return {
            "timezone": str(zone_name),
            "datetime": moment.isoformat(timespec="seconds"),
            "date": moment.date().isoformat(),
            "weekday": moment.strftime("%A"),
        }


class HttpTool:
    """A tool answered by an HTTP back end: GET `url?<param>=<value>` → its JSON."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        url: str,
        param: str,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,  # None for tests
    ) -> None:
        self.name = name
        self.description = description
        self.parameters = {
            "type": "object",
            "properties": {param: {"type": "string"}},
            "required": [param],
        }
        self._url = url
        self._param = param
        self._timeout = timeout_seconds
        self._transport = transport

    async def run(self, args: dict[str, Any]) -> Any:
        value = _string_arg(args, self._param)
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
                answer = await http.get(self._url, params={self._param: value})
                answer.raise_for_status()
                return answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ToolError(f"{self.name} back end failed: {error}") from None


class ToolBox:
    """The tools on offer, by name."""

    def __init__(self, tools: list[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in self._tools.values()
        ]

    async def run(self, name: str, args: dict[str, Any], *, limit_seconds: float) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutcome(name, False, error=f"unknown tool {name!r}; known: {self.names}")
        try:
            output = await _within(tool.run(args), limit_seconds)
        except ToolError as error:
            return ToolOutcome(name, False, error=str(error))
        except TimeoutError:
            return ToolOutcome(name, False, error=f"{name} took longer than {limit_seconds}s")
        return ToolOutcome(name, True, output=output)


async def _within(call: Awaitable[Any], seconds: float) -> Any:
    async with asyncio.timeout(seconds):
        return await call


def default_toolbox(settings: LLMSettings, *, clock: Callable[[], float] = time.time) -> ToolBox:
    tools: list[Tool] = [Calculate(), Calendar(clock)]
    if settings.llm_search_url:
        tools.append(
            HttpTool(
                name="search",
                description='Web search, e.g. {"query": "RocketMQ 5 release date"}.',
                url=settings.llm_search_url,
                param="query",
                timeout_seconds=settings.llm_tool_timeout_seconds,
            )
        )
    if settings.llm_weather_url:
        tools.append(
            HttpTool(
                name="weather",
                description='Current weather of a place, e.g. {"location": "Beijing"}.',
                url=settings.llm_weather_url,
                param="location",
                timeout_seconds=settings.llm_tool_timeout_seconds,
            )
        )
    return ToolBox(tools)
