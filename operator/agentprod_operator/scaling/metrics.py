"""Prometheus metrics of the operator's autoscaler, per pipeline."""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge

from agentprod_operator.scaling.models import Reason

LABELS = ["namespace", "pipeline"]
LAG = Gauge(
    "agentprod_pipeline_lag",
    "Backlog of the request topics (normal and high priority) and their retry topics.",
    LABELS,
)
IN_FLIGHT = Gauge("agentprod_pipeline_in_flight", "Tasks running (live leases in Redis).", LABELS)
DEAD_LETTERS = Gauge(
    "agentprod_pipeline_dead_letters",
    "Messages stored in the consumer group's dead-letter topic (%DLQ%<group>).",
    LABELS,
)
DESIRED = Gauge("agentprod_pipeline_desired_replicas", "Replicas the scaler decided.", LABELS)
CURRENT = Gauge("agentprod_pipeline_replicas", "Replicas of the worker Deployment.", LABELS)
DECISIONS = Counter(
    "agentprod_pipeline_scaling_decisions_total",
    "Scaling decisions, by reason.",
    [*LABELS, "reason"],
)
SCALE_EVENTS = Counter(
    "agentprod_pipeline_scale_events_total", "Replica changes made by the scaler.", LABELS
)
REASON = Enum(
    "agentprod_pipeline_scaling_reason",
    "The rule behind the latest scaling decision (1 on the current reason).",
    LABELS,
    states=[reason.value for reason in Reason],
)
PROVIDER_LIMITED = Gauge(
    "agentprod_pipeline_provider_limited",
    "1 while the replicas are capped at what the model provider serves (ProviderLimited).",
    LABELS,
)
PROVIDER_CAP = Gauge(
    "agentprod_pipeline_provider_cap_replicas",
    "The provider cap in force (maxReplicas when there is none).",
    LABELS,
)
MODEL_CALLS = Gauge(
    "agentprod_pipeline_model_calls_per_minute",
    "Model calls of the workers per minute over the signal window, by outcome "
    "(ok, throttled: 429/503 from the provider, limited: over the own rpm/tpm budget).",
    [*LABELS, "outcome"],
)
MODEL_TOKENS = Gauge(
    "agentprod_pipeline_model_tokens_per_minute",
    "Tokens of the successful model calls per minute over the signal window.",
    LABELS,
)
