"""Plan validation: what a small model's output may look like, and what the parser makes of it."""

import json

import pytest
from agentprod.llm import plans

GOOD = {
    "subtasks": [
        {"id": 1, "description": "multiply", "tool": "calculate", "args": {"expression": "25*4"}}
    ]
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "```json\n" + json.dumps(GOOD) + "\n```",
        "Here is the plan: " + json.dumps(GOOD) + " Hope it helps.",
        json.dumps(GOOD["subtasks"]),  # a bare list
        json.dumps({"plan": GOOD["subtasks"]}),
        json.dumps({"subtasks": [{"name": "calculate", "arguments": {"expression": "25*4"}}]}),
        json.dumps({"subtasks": [{"tool": "Calculate", "args": '{"expression": "25*4"}'}]}),
        json.dumps({"tool": "calculate", "parameters": {"expression": "25*4"}}),  # one subtask
    ],
)
def test_lenient_parse(text: str) -> None:
    plan = plans.parse_plan(text)
    assert [s.tool for s in plan.subtasks] == ["calculate"]
    assert plan.subtasks[0].args == {"expression": "25*4"}
    assert plan.subtasks[0].id == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("I cannot help with that.", "no JSON"),
        ('{"subtasks": []}', "subtasks"),
        ('{"subtasks": [{"id": 1, "description": "x"}]}', "tool"),
        ('{"subtasks": ["calculate"]}', "subtasks.0"),
        (json.dumps({"subtasks": [GOOD["subtasks"][0]] * 7}), "subtasks"),
        ('{"answer": 42}', "subtasks"),
    ],
)
def test_invalid_plans_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(plans.PlanError, match=problem):
        plans.parse_plan(text)


def test_unknown_tools_pass_validation_and_fail_at_execution() -> None:
    plan = plans.parse_plan('{"subtasks": [{"id": 1, "tool": "teleport", "args": {}}]}')
    assert plan.subtasks[0].tool == "teleport"


def test_schema_lists_the_offered_tools() -> None:
    schema = plans.plan_schema(["calculate", "calendar"])
    item = schema["properties"]["subtasks"]["items"]
    assert item["properties"]["tool"]["enum"] == ["calculate", "calendar"]
    assert schema["properties"]["subtasks"]["maxItems"] == plans.MAX_SUBTASKS
    tool = plans.plan_tool(["calculate"])
    assert tool["function"]["name"] == plans.PLAN_TOOL


def test_plan_text_prefers_the_tool_call() -> None:
    calls = [{"function": {"name": plans.PLAN_TOOL, "arguments": json.dumps(GOOD)}}]
    assert plans.plan_text("ignored", calls) == json.dumps(GOOD)
    assert plans.plan_text("content", []) == "content"


def test_repair_messages_show_the_problem() -> None:
    first = plans.planner_messages("25*4?", [{"name": "calculate", "description": "math"}])
    again = plans.repair_messages(first, "{bad", "no JSON object found")
    assert again[: len(first)] == first
    assert again[-2] == {"role": "assistant", "content": "{bad"}
    assert "no JSON object found" in again[-1]["content"]
