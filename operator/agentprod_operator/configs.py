"""The operator's own settings (environment, prefix AGENTPROD_OPERATOR_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTPROD_OPERATOR_", extra="ignore")

    #: Seconds between periodic reconciles of each pipeline (drift repair, RocketMQ recovery).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    #: Attempts to delete topics and group (deletionPolicy Delete) before giving up and
    #: releasing the finalizer with a warning, so a dead RocketMQ never wedges a namespace.
    delete_attempts: int = Field(default=5, ge=1)
    delete_retry_seconds: float = Field(default=10.0, ge=0)
    finalizer: str = "agentprod.io/finalizer"
    #: Port of the operator's Prometheus /metrics (lag, in-flight, replicas, decisions); 0: off.
    metrics_port: int = Field(default=9090, ge=0, le=65535)
