"""`echo`: returns the content unchanged — the cheapest agent, for throughput benchmarks.

A test agent: off unless AGENTPROD_TEST_AGENTS is set. No config, no parameters.
"""

from __future__ import annotations

from typing import Any

from agentprod.agents.base import AgentConfig, AgentParams, AgentTask, DeclaredAgent, agent_config
from agentprod.models import JSON


class EchoConfig(AgentConfig):
    pass


class EchoParams(AgentParams):
    pass


class EchoAgent(DeclaredAgent):
    Config = EchoConfig
    Params = EchoParams
    test_only = True

    def __init__(self, config: dict[str, Any]) -> None:
        agent_config(EchoConfig, config)

    async def run(self, task: AgentTask) -> JSON:
        return {"echo": task.content}
