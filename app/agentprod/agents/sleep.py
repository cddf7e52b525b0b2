"""`sleep`: waits, then answers — a stand-in for a slow LLM call in tests and benchmarks.

Config `seconds` (default 0.02) sets the wait; a task's metadata may override it with
`sleep_seconds`, and `fail_attempts: N` makes its first N attempts raise `AgentError` so retry
and redelivery paths can be exercised end to end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentprod.agents.base import AgentError, AgentTask
from agentprod.models import JSON

DEFAULT_SECONDS = 0.02


class SleepAgent:
    def __init__(self, config: dict[str, Any]) -> None:
        self._seconds = float(config.get("seconds", DEFAULT_SECONDS))

    async def run(self, task: AgentTask) -> JSON:
        seconds = float(task.metadata.get("sleep_seconds", self._seconds))
        await asyncio.sleep(seconds)
        if task.attempt <= int(task.metadata.get("fail_attempts", 0)):
            raise AgentError(f"planned failure on attempt {task.attempt}")
        return {"slept_seconds": seconds, "attempt": task.attempt}
