"""The planner's contract: the plan schema, the prompt that asks for it, and a forgiving parser.

The strong tier is asked for the plan through a forced tool call (`submit_plan`, whose
parameters are `plan_schema(tools)`): OpenAI, Gemini's OpenAI endpoint and llama.cpp's
`chatml-function-calling` all constrain the arguments to the schema (llama.cpp with a grammar).
A small model still produces odd JSON, so `parse_plan` takes what it can: code fences and prose
around the JSON, a bare list of subtasks, common aliases (`name`/`arguments`/`parameters`), then
validates with pydantic. Tool names are *not* rejected here: a subtask naming an unknown tool
fails on its own at execution, visibly, and the rest of the plan still runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_SUBTASKS = 6
PLAN_TOOL = "submit_plan"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class PlanError(ValueError):
    """The model's output is not a usable plan; the message says why (shown to the model)."""


class Subtask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int = Field(ge=1)
    description: str = Field(default="", max_length=500)
    tool: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tool", mode="before")
    @classmethod
    def _normal_tool(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class Plan(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1, max_length=MAX_SUBTASKS)


def plan_schema(tools: list[str]) -> dict[str, Any]:
    """JSON schema of the plan, with the tool names as an enum."""
    return {
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SUBTASKS,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "description": {"type": "string"},
                        "tool": {"type": "string", "enum": tools},
                        "args": {"type": "object"},
                    },
                    "required": ["id", "description", "tool", "args"],
                },
            }
        },
        "required": ["subtasks"],
    }


def plan_tool(tools: list[str]) -> dict[str, Any]:
    """The `submit_plan` function whose forced call carries the plan."""
    return {
        "type": "function",
        "function": {
            "name": PLAN_TOOL,
            "description": "Submit the plan: subtasks, each naming one tool and its arguments.",
            "parameters": plan_schema(tools),
        },
    }


def planner_messages(query: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    catalogue = "\n".join(f"- {tool['name']}: {tool['description']}" for tool in tools)
    system = (
        "You are a planner. Split the user's request into at most "
        f"{MAX_SUBTASKS} subtasks. Each subtask uses exactly one of these tools:\n"
        f"{catalogue}\n"
        f"Answer only by calling {PLAN_TOOL} with JSON like "
        '{"subtasks": [{"id": 1, "description": "multiply", "tool": "calculate", '
        '"args": {"expression": "25*4"}}]}.'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": query}]


def repair_messages(
    messages: list[dict[str, Any]], bad_output: str, problem: str
) -> list[dict[str, Any]]:
    """The planner conversation again, with the bad answer and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": bad_output[:2000]},
        {
            "role": "user",
            "content": f"That plan is invalid: {problem[:500]}. "
            f"Call {PLAN_TOOL} again with valid JSON that follows the schema.",
        },
    ]


def extract_json(text: str) -> Any:
    """The first JSON value in `text` (code fences and surrounding prose ignored)."""
    candidates = [match.group(1) for match in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            return json.loads(stripped)
        except ValueError:
            pass
        decoder = json.JSONDecoder()
        for index, char in enumerate(stripped):
            if char in "{[":
                try:
                    value, _ = decoder.raw_decode(stripped, index)
                except ValueError:
                    continue
                return value
    raise PlanError("no JSON object found in the answer")


def _normalise(data: Any) -> Any:
    if isinstance(data, dict) and "subtasks" not in data:
        for alias in ("plan", "tasks", "steps"):
            if isinstance(data.get(alias), list):
                data = {"subtasks": data[alias]}
                break
        else:
            if "tool" in data or "name" in data:
                data = {"subtasks": [data]}
    if isinstance(data, list):
        data = {"subtasks": data}
    if not isinstance(data, dict) or not isinstance(data.get("subtasks"), list):
        return data
    subtasks = []
    for position, item in enumerate(data["subtasks"], start=1):
        if not isinstance(item, dict):
            subtasks.append(item)
            continue
        fixed = dict(item)
        if "tool" not in fixed and isinstance(fixed.get("name"), str):
            fixed["tool"] = fixed.pop("name")
        for alias in ("arguments", "parameters", "params", "input"):
            if "args" not in fixed and alias in fixed:
                fixed["args"] = fixed.pop(alias)
        if isinstance(fixed.get("args"), str):  # arguments as a JSON string (OpenAI style)
            try:
                fixed["args"] = json.loads(fixed["args"])
            except ValueError:
                fixed["args"] = {"input": fixed["args"]}
        if not isinstance(fixed.get("id"), int) or isinstance(fixed.get("id"), bool):
            fixed["id"] = position
        subtasks.append(fixed)
    return {"subtasks": subtasks}


def parse_plan(text: str) -> Plan:
    """A validated `Plan` from the model's output, or `PlanError` naming the problem."""
    data = _normalise(extract_json(text))
    try:
        return Plan.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "plan"
        raise PlanError(f"{where}: {first['msg']}") from None


def plan_text(text: str, tool_calls: list[dict[str, Any]]) -> str:
    """The plan JSON from a completion: the `submit_plan` call's arguments, else the text."""
    for call in tool_calls:
        function = call.get("function") or {}
        if function.get("arguments"):
            return str(function["arguments"])
    return text
