"""`sleep`: waits, then answers — a stand-in for a slow LLM call in tests and benchmarks.

A test agent: off unless AGENTPROD_TEST_AGENTS is set. Config `seconds` (default 0.02) sets
the wait; a task's metadata may override it with `sleep_seconds` (0 to 600), and
`fail_attempts: N` (0 to 100) makes its first N attempts raise `AgentError` so retry and
redelivery paths can be exercised end to end. `steps: N` (1 to 1000) splits the wait into N
steps and reports a `step` progress event after each (the events and cancel tests follow them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from agentprod.agents.base import (
    AgentConfig,
    AgentError,
    AgentParams,
    AgentTask,
    DeclaredAgent,
    JsonInt,
    agent_config,
)
from agentprod.models import JSON

DEFAULT_SECONDS = 0.02
#: The longest wait a task may ask for (a worker slot is held meanwhile).
MAX_SECONDS = 600.0
MAX_FAIL_ATTEMPTS = 100
MAX_STEPS = 1000


class SleepConfig(AgentConfig):
    seconds: float = Field(
        default=DEFAULT_SECONDS, ge=0, le=MAX_SECONDS, strict=True, allow_inf_nan=False
    )


class SleepParams(AgentParams):
    sleep_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        strict=True,
        allow_inf_nan=False,
        description="seconds to wait (overrides the config's `seconds`)",
    )
    fail_attempts: JsonInt = Field(
        default=0,
        ge=0,
        le=MAX_FAIL_ATTEMPTS,
        description="the first N attempts fail with a retryable error",
    )
    steps: JsonInt = Field(
        default=1,
        ge=1,
        le=MAX_STEPS,
        description="split the wait into this many steps, a `step` progress event after each",
    )


class SleepAgent(DeclaredAgent):
    Config = SleepConfig
    Params = SleepParams
    test_only = True

    def __init__(self, config: dict[str, Any]) -> None:
        self._seconds = agent_config(SleepConfig, config).seconds

    async def run(self, task: AgentTask) -> JSON:
        params = task.params_as(SleepParams)
        seconds = self._seconds if params.sleep_seconds is None else params.sleep_seconds
        for step in range(1, params.steps + 1):
            await asyncio.sleep(seconds / params.steps)
            if params.steps > 1:
                await task.progress("step", {"step": step, "of": params.steps})
        if task.attempt <= params.fail_attempts:
            raise AgentError(f"planned failure on attempt {task.attempt}")
        return {"slept_seconds": seconds, "attempt": task.attempt}
