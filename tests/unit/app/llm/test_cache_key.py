"""The response cache key: every parameter that changes the output changes the key."""

import dataclasses

import pytest
from agentprod.llm import caching
from agentprod.llm.client import ChatRequest

BASE = ChatRequest(
    model="m-fast",
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    temperature=0.0,
    max_tokens=64,
)


def key(request: ChatRequest, tenant: str = "public", version: str = "1") -> str:
    return caching.cache_key(request, tenant=tenant, prompt_version=version)


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(BASE, model="m-strong"),
        dataclasses.replace(
            BASE, messages=[{"role": "system", "content": "be long"}, BASE.messages[1]]
        ),
        dataclasses.replace(BASE, messages=[BASE.messages[0], {"role": "user", "content": "hi!"}]),
        dataclasses.replace(BASE, temperature=0.7),
        dataclasses.replace(BASE, max_tokens=65),
        dataclasses.replace(BASE, top_p=0.9),
        dataclasses.replace(BASE, seed=7),
        dataclasses.replace(BASE, response_format={"type": "json_object"}),
        dataclasses.replace(BASE, tools=[{"type": "function", "function": {"name": "f"}}]),
        dataclasses.replace(BASE, tool_choice="auto"),
    ],
)
def test_output_changing_parameters_change_the_key(changed: ChatRequest) -> None:
    assert key(changed) != key(BASE)


def test_tenant_and_prompt_version_change_the_key() -> None:
    assert key(BASE, tenant="acme") != key(BASE)
    assert key(BASE, version="2") != key(BASE)


def test_same_request_same_key() -> None:
    copy = ChatRequest(
        model="m-fast",
        messages=[{"content": "be brief", "role": "system"}, {"content": "hi", "role": "user"}],
        temperature=0.0,
        max_tokens=64,
    )
    assert key(copy) == key(BASE)
    assert len(key(BASE)) == 64


def test_only_deterministic_requests_are_cached_unless_asked() -> None:
    assert caching.cacheable(BASE, opt_in=False)
    warm = dataclasses.replace(BASE, temperature=0.8)
    assert not caching.cacheable(warm, opt_in=False)
    assert caching.cacheable(warm, opt_in=True)
