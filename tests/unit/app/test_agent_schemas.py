"""Agents' declared schemas: per-task parameters (metadata) and config (AGENT_CONFIG), and the
test agents being off unless enabled."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from agentprod.agents import registry
from agentprod.agents.base import AgentTask
from agentprod.agents.sleep import SleepParams
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("name", "metadata", "field"),
    [
        ("sleep", {"sleep_seconds": "abc"}, "sleep_seconds"),
        ("sleep", {"sleep_seconds": 1e9}, "sleep_seconds"),
        ("sleep", {"sleep_seconds": -1}, "sleep_seconds"),
        ("sleep", {"sleep_seconds": True}, "sleep_seconds"),
        ("sleep", {"fail_attempts": 1.5}, "fail_attempts"),
        ("sleep", {"fail_attempts": "3"}, "fail_attempts"),
        ("chat", {"temperature": 5}, "temperature"),
        ("chat", {"max_tokens": 0}, "max_tokens"),
        ("chat", {"max_tokens": 10**6}, "max_tokens"),
        ("chat", {"cache": "yes"}, "cache"),
        ("chat", {"model": 7}, "model"),
        ("planner", {"task_type": ["x"]}, "task_type"),
    ],
)
def test_a_bad_parameter_is_refused_with_its_field(
    name: str, metadata: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        registry.validate_params(name, metadata)
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]
    assert registry.describe(raised.value).startswith(f"{field}: ")


def test_other_metadata_is_the_users_own_and_passes() -> None:
    params = registry.validate_params(
        "sleep", {"sleep_seconds": 2, "order": {"id": 10**30}, "tags": ["a"]}
    )
    assert params == SleepParams(sleep_seconds=2.0)
    assert registry.validate_params("tagger", {"anything": [1, {"x": None}]}).model_dump() == {}


def test_chat_options_are_trimmed_and_blank_means_unset() -> None:
    params = registry.validate_params("chat", {"model": "  m1 ", "task_type": "  "})
    assert params.model_dump()["model"] == "m1"
    assert params.model_dump()["task_type"] == ""


def test_params_schema_documents_the_bounds_and_allows_other_keys() -> None:
    schema = registry.params_schema("sleep")
    assert schema["additionalProperties"] is True
    seconds = schema["properties"]["sleep_seconds"]["anyOf"][0]
    assert (seconds["type"], seconds["minimum"], seconds["maximum"]) == ("number", 0, 600.0)
    assert set(registry.params_schema("chat")["properties"]) == {
        "model",
        "task_type",
        "system",
        "temperature",
        "max_tokens",
        "cache",
        "stream",
    }
    assert registry.params_schema("tagger")["properties"] == {}


def test_the_run_uses_the_validated_params() -> None:
    task = AgentTask(
        task_id="t",
        user_id="u",
        content="x",
        metadata={"sleep_seconds": "ignored: params win"},
        attempt=1,
        params=SleepParams(sleep_seconds=0.0),
    )
    assert task.params_as(SleepParams).sleep_seconds == 0.0
    with pytest.raises(ValidationError):
        AgentTask(
            task_id="t", user_id="u", content="x", metadata=task.metadata, attempt=1
        ).params_as(SleepParams)


def test_test_agents_are_off_unless_enabled() -> None:
    assert {"echo", "sleep"} <= set(registry.names())
    off = registry.enabled_names(test_agents=False)
    assert "tagger" in off
    assert not {"echo", "sleep"} & set(off)
    assert {"echo", "sleep", "tagger"} <= set(registry.enabled_names(test_agents=True))
    assert not registry.is_enabled("sleep", test_agents=False)
    assert not registry.is_enabled("nope", test_agents=True)
    with pytest.raises(registry.DisabledAgent, match="AGENTPROD_TEST_AGENTS"):
        registry.AgentPool(default="sleep", config={}, test_agents=False)
    pool = registry.AgentPool(default="tagger", config={}, test_agents=False)
    with pytest.raises(registry.DisabledAgent):
        pool.get("echo")
    with pytest.raises(registry.DisabledAgent):
        pool.params("sleep", {})


@pytest.mark.parametrize(
    ("name", "config", "field"),
    [
        ("sleep", {"seconds": "abc"}, "seconds"),
        ("sleep", {"seconds": 601}, "seconds"),
        ("sleep", {"secnds": 1}, "secnds"),
        ("tagger", {"x": 1}, "x"),
    ],
)
def test_a_bad_config_is_refused_with_its_key(
    name: str, config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        registry.validate_config(name, config)
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def test_llm_agent_config_takes_model_settings_and_refuses_the_rest() -> None:
    assert registry.validate_config("chat", {"llm_max_tokens": 64, "redis_url": "redis://h"})
    with pytest.raises(ValidationError, match="unknown key nope"):
        registry.validate_config("chat", {"nope": 1})
    with pytest.raises(ValidationError, match="LLM_MAX_TOKENS"):
        registry.validate_config("planner", {"llm_max_tokens": "many"})


def test_a_shared_config_goes_to_the_agent_that_declares_each_key() -> None:
    """AGENT_CONFIG is the default agent's, but another agent a task names gets its own keys;
    a key that no enabled agent declares is a typo and fails when the pool is made."""
    pool = registry.AgentPool(
        default="tagger", config={"seconds": 0.5, "redis_client": object()}, test_agents=True
    )
    pool.get("sleep")  # built with seconds=0.5, without complaint from the tagger
    with pytest.raises(ValidationError) as raised:
        registry.AgentPool(default="tagger", config={"seconds": 0.5}, test_agents=False)
    assert raised.value.errors()[0]["loc"] == ("seconds",)
    with pytest.raises(ValidationError, match="secnds"):
        registry.AgentPool(default="sleep", config={"secnds": 0.5}, test_agents=True)


#: JSON Schema's keywords (2020-12) plus the OpenAPI annotations pydantic writes.
KEYWORDS = set(jsonschema.Draft202012Validator.VALIDATORS) | {
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "$defs",
    "$schema",
    "$id",
}


def _unknown_keywords(schema: Any) -> set[str]:
    """Keywords a JSON Schema validator ignores (e.g. pydantic's `ge` when a bound on an
    optional field is not pushed into the type): a constraint clients and fuzzers cannot see."""
    if isinstance(schema, list):
        return set().union(*(_unknown_keywords(item) for item in schema))
    if not isinstance(schema, dict):
        return set()
    unknown = set(schema) - KEYWORDS
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties"):
            unknown |= set().union(*(_unknown_keywords(v) for v in value.values()))
        elif key not in ("enum", "const", "default", "examples", "required"):
            unknown |= _unknown_keywords(value)
    return unknown


@pytest.mark.parametrize("name", registry.names())
def test_params_schema_uses_only_json_schema_keywords(name: str) -> None:
    schema = registry.params_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert not _unknown_keywords(schema)


def test_a_bound_the_model_checks_is_in_the_schema() -> None:
    tokens = registry.params_schema("chat")["properties"]["max_tokens"]["anyOf"][0]
    assert (tokens["minimum"], tokens["maximum"]) == (1, 8192)
    validator = jsonschema.Draft202012Validator(registry.params_schema("chat"))
    assert not validator.is_valid({"max_tokens": 0})
    with pytest.raises(ValidationError):
        registry.validate_params("chat", {"max_tokens": 0})


def _integer_bounds(spec: dict[str, Any]) -> dict[str, Any] | None:
    for choice in spec.get("anyOf", [spec]):
        if choice.get("type") == "integer":
            return choice
    return None


@pytest.mark.parametrize("name", registry.names())
def test_an_integer_parameter_takes_what_json_schema_calls_an_integer(name: str) -> None:
    """`1.0` is an integer to JSON Schema (and to clients generating from it): accepted."""
    for field, spec in registry.params_schema(name)["properties"].items():
        bounds = _integer_bounds(spec)
        if bounds is None:
            continue
        value = float(bounds.get("minimum", 0))
        assert registry.validate_params(name, {field: value}).model_dump()[field] == int(value)
