"""`echo`: returns the content unchanged — the cheapest agent, for throughput benchmarks."""

from __future__ import annotations

from typing import Any

from agentprod.agents.base import AgentTask
from agentprod.models import JSON


class EchoAgent:
    def __init__(self, config: dict[str, Any]) -> None:
        del config

    async def run(self, task: AgentTask) -> JSON:
        return {"echo": task.content}
