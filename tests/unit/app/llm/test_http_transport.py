"""The model client's HTTP transport: aiohttp by default, one kept-alive connection per slot."""

from __future__ import annotations

import pytest
from agentprod.llm import client
from agentprod.llm.config import LLMSettings
from pydantic import ValidationError


def test_default_transport_is_aiohttp_with_a_connection_per_slot() -> None:
    settings = LLMSettings(worker_concurrency=256, worker_priority_slots=2)
    http = client._http_client(settings)
    assert type(http._transport).__name__ == "AiohttpTransport"
    assert http._transport.limits.max_connections == 258
    assert http._transport.limits.max_keepalive_connections == 258


def test_httpx_transport_can_be_chosen_and_gets_the_same_pool_size() -> None:
    settings = LLMSettings(llm_http_transport="httpx", worker_concurrency=3)
    http = client._http_client(settings)
    assert type(http._transport).__name__ == "AsyncHTTPTransport"
    assert http._transport._pool._max_connections == 4  # 3 slots + 1 priority slot
    assert http._transport._pool._max_keepalive_connections == 4


def test_an_unknown_transport_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_HTTP_TRANSPORT", "curl")
    with pytest.raises(ValidationError, match="llm_http_transport"):
        LLMSettings()
