"""The operator's own settings: environment variables with the prefix AGENTPROD_OPERATOR_.

`load_settings` reads them once at start (the CLI calls it) and stops with a message naming the
variable, e.g. `AGENTPROD_OPERATOR_METRICS_PORT: Input should be less than or equal to 65535`,
instead of a pydantic traceback.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "AGENTPROD_OPERATOR_"


class ConfigurationError(Exception):
    """An AGENTPROD_OPERATOR_* variable holds a value the operator cannot use."""


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    #: Seconds between periodic reconciles of each pipeline (drift repair, RocketMQ recovery).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    #: Attempts to delete topics and group (deletionPolicy Delete) before giving up and
    #: releasing the finalizer with a warning, so a dead RocketMQ never wedges a namespace.
    delete_attempts: int = Field(default=5, ge=1)
    #: Seconds between those attempts.
    delete_retry_seconds: float = Field(default=10.0, ge=0)
    #: The finalizer the operator puts on each AgentPipeline.
    finalizer: str = "agentprod.io/finalizer"
    #: Port of the operator's Prometheus /metrics (lag, in-flight, replicas, decisions); 0: off.
    metrics_port: int = Field(default=9090, ge=0, le=65535)


def load_settings() -> OperatorConfig:
    """Read the environment; on a bad value raise ConfigurationError naming the variable."""
    try:
        return OperatorConfig()
    except ValidationError as error:
        problems = [
            f"{ENV_PREFIX}{'.'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        ]
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
