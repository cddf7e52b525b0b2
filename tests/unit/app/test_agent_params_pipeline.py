"""A task message with bad agent parameters (one the API would refuse: an old message, or one
sent around the API) fails on its first attempt with the parameter named — never retried."""

from __future__ import annotations

from typing import Any

import pytest
from agentprod.api import Services, identity, tasks
from agentprod.models import TaskAccepted, TaskRequest

from tests.unit.app import test_embedded_pipeline as embedded
from tests.unit.app.test_embedded_pipeline import Stack

stack = embedded.stack  # the fixture: the embedded broker, store, API and worker


@pytest.mark.parametrize(
    ("metadata", "field"),
    [({"sleep_seconds": "abc"}, "sleep_seconds"), ({"sleep_seconds": 1e9}, "sleep_seconds")],
)
async def test_a_message_with_bad_parameters_fails_at_once(
    stack: Stack, metadata: dict[str, Any], field: str
) -> None:
    """A message the API would refuse (an old one, or sent around the API) is not retried: the
    task fails on its first attempt with the parameter named."""
    body = TaskRequest(user_id="u", content="x", agent="sleep", metadata=metadata | {"note": 1})
    services = Services(stack.settings, stack.store, stack.broker.publisher())
    accepted = await tasks.accept(services, body, None, identity.Caller())
    assert isinstance(accepted, TaskAccepted)
    view = await stack.wait_finished(accepted.task_id)
    assert (view["status"], view["attempts"]) == ("failed", 1)
    assert f"metadata.{field}" in view["error"]
    assert view["error"].startswith("PermanentAgentError: invalid parameters")
