"""Find agents by name through the `agentprod.agents` entry-point group, and their schemas.

The built-in agents are registered there by agentprod's own `pyproject.toml`; a user package
adds its agents the same way:

    [project.entry-points."agentprod.agents"]
    summarize = "mypkg.agents:SummarizeAgent"   # a class or function taking the config dict

A class may declare `Config` and `Params` pydantic models (see `agents.base`); an agent that
declares none takes any config and has no parameters. `test_only` agents (the built-in `echo`
and `sleep`) are registered but enabled only when AGENTPROD_TEST_AGENTS is set.

For the API and the worker:

- `enabled_names(test_agents=...)` / `is_enabled(name, test_agents=...)`: what may be run;
- `validate_params(name, metadata)`: the agent's `Params` from a task's metadata, or a
  pydantic `ValidationError` whose `loc` names the field (`("sleep_seconds",)`);
- `params_schema(name)`: the JSON schema of those parameters (for OpenAPI);
- `validate_config(name, config)`: the agent's `Config` from AGENT_CONFIG, or a
  `ValidationError`.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from agentprod.agents.base import (
    RUNTIME_KEYS,
    Agent,
    AgentFactory,
    AgentParams,
    OpenConfig,
    agent_config,
)
from agentprod.settings import load_settings

GROUP = "agentprod.agents"


class UnknownAgent(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown agent {name!r}; registered: {', '.join(known) or 'none'}")
        self.name = name


class DisabledAgent(LookupError):
    """A test agent asked for while AGENTPROD_TEST_AGENTS is off."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"agent {name!r} is a test agent, disabled (set AGENTPROD_TEST_AGENTS=true to use it)"
        )
        self.name = name


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {point.name: point for point in metadata.entry_points(group=GROUP)}


@functools.cache
def factory(name: str) -> AgentFactory:
    """The agent's class or factory function (loaded once); UnknownAgent if not registered."""
    point = _entry_points().get(name)
    if point is None:
        raise UnknownAgent(name, names())
    return cast(AgentFactory, point.load())


def names() -> list[str]:
    """Every registered agent, enabled or not."""
    return sorted(_entry_points())


def is_registered(name: str) -> bool:
    return name in _entry_points()


def is_test_agent(name: str) -> bool:
    return bool(getattr(factory(name), "test_only", False))


def is_enabled(name: str, *, test_agents: bool) -> bool:
    """Registered, and not a test agent unless test agents are enabled."""
    return is_registered(name) and (test_agents or not is_test_agent(name))


def enabled_names(*, test_agents: bool) -> list[str]:
    return [name for name in names() if is_enabled(name, test_agents=test_agents)]


def config_model(name: str) -> type[BaseModel]:
    model = getattr(factory(name), "Config", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else OpenConfig


def params_model(name: str) -> type[AgentParams]:
    model = getattr(factory(name), "Params", None)
    return model if isinstance(model, type) and issubclass(model, AgentParams) else AgentParams


def params_schema(name: str) -> dict[str, Any]:
    """JSON schema of the agent's per-task parameters (metadata keys; others are allowed)."""
    return _params_schema(name)


@functools.cache
def _params_schema(name: str) -> dict[str, Any]:
    schema = params_model(name).model_json_schema()
    schema["additionalProperties"] = True
    return schema


def validate_params(name: str, task_metadata: dict[str, Any]) -> AgentParams:
    """The agent's `Params` from a task's metadata; pydantic ValidationError on a bad value."""
    return params_model(name).model_validate(task_metadata)


def validate_config(name: str, config: dict[str, Any]) -> BaseModel:
    """The agent's `Config` from a config dict (runtime keys ignored); ValidationError if bad."""
    return agent_config(config_model(name), config)


def create(name: str, config: dict[str, Any]) -> Agent:
    return factory(name)(config)


def config_keys(name: str) -> frozenset[str] | None:
    """The AGENT_CONFIG keys an agent declares; None when it takes any (no `Config`)."""
    model = config_model(name)
    if model is OpenConfig:
        return None
    extra: frozenset[str] = getattr(model, "extra_keys", frozenset())
    return frozenset(model.model_fields) | extra


def _own_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The part of a shared config dict an agent declares (all of it for open configs)."""
    keys = config_keys(name)
    if keys is None:
        return dict(config)
    return {key: value for key, value in config.items() if key in keys or key in RUNTIME_KEYS}


class AgentPool:
    """Builds each agent once, on first use, with the process's agent config.

    The config (AGENT_CONFIG) is shared: each agent gets the keys its own `Config` declares
    (all of them when it declares none). When the pool is made, the default agent's keys are
    validated, and a key that no enabled agent declares is refused (ValidationError naming
    it): a typo fails at start instead of being ignored.
    """

    def __init__(
        self, *, default: str, config: dict[str, Any], test_agents: bool | None = None
    ) -> None:
        self.default = default
        #: Test agents enabled: as given, else the AGENTPROD_TEST_AGENTS setting.
        self.test_agents = load_settings().test_agents if test_agents is None else test_agents
        self._config = config
        self._agents: dict[str, Agent] = {}
        self._check(default)
        validate_config(default, _own_config(default, config))
        self._refuse_unclaimed(config)

    def _refuse_unclaimed(self, config: dict[str, Any]) -> None:
        claimed: set[str] = set(RUNTIME_KEYS)
        for name in enabled_names(test_agents=self.test_agents):
            keys = config_keys(name)
            if keys is None and name == self.default:
                return  # the default agent takes any key
            claimed |= keys or set()
        unclaimed = {key: value for key, value in config.items() if key not in claimed}
        if unclaimed:
            validate_config(self.default, unclaimed)  # raises: extra inputs are not permitted

    def _check(self, name: str) -> None:
        if not is_registered(name):
            raise UnknownAgent(name, names())
        if not is_enabled(name, test_agents=self.test_agents):
            raise DisabledAgent(name)

    def name_of(self, name: str | None) -> str:
        return name or self.default

    def get(self, name: str | None) -> Agent:
        chosen = self.name_of(name)
        if chosen not in self._agents:
            self._check(chosen)
            self._agents[chosen] = create(chosen, _own_config(chosen, self._config))
        return self._agents[chosen]

    def params(self, name: str | None, task_metadata: dict[str, Any]) -> AgentParams:
        """The task's validated parameters for the agent it runs (ValidationError if bad)."""
        chosen = self.name_of(name)
        self._check(chosen)
        return validate_params(chosen, task_metadata)


def describe(error: ValidationError, *, prefix: str = "") -> str:
    """`sleep_seconds: Input should be ...; fail_attempts: ...` (each field by its path)."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(object)"
        problems.append(f"{prefix}{field}: {item['msg']}")
    return "; ".join(problems)
