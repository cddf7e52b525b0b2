"""Find agents by name through the `agentprod.agents` entry-point group.

The built-in agents are registered there by agentprod's own `pyproject.toml`; a user package
adds its agents the same way:

    [project.entry-points."agentprod.agents"]
    summarize = "mypkg.agents:SummarizeAgent"   # a class or function taking the config dict
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any, cast

from agentprod.agents.base import Agent, AgentFactory

GROUP = "agentprod.agents"


class UnknownAgent(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown agent {name!r}; registered: {', '.join(known) or 'none'}")
        self.name = name


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {point.name: point for point in metadata.entry_points(group=GROUP)}


def names() -> list[str]:
    return sorted(_entry_points())


def is_registered(name: str) -> bool:
    return name in _entry_points()


def create(name: str, config: dict[str, Any]) -> Agent:
    point = _entry_points().get(name)
    if point is None:
        raise UnknownAgent(name, names())
    factory = cast(AgentFactory, point.load())
    return factory(config)


class AgentPool:
    """Builds each agent once, on first use, with the process's agent config."""

    def __init__(self, *, default: str, config: dict[str, Any]) -> None:
        self.default = default
        self._config = config
        self._agents: dict[str, Agent] = {}

    def get(self, name: str | None) -> Agent:
        chosen = name or self.default
        if chosen not in self._agents:
            self._agents[chosen] = create(chosen, self._config)
        return self._agents[chosen]
