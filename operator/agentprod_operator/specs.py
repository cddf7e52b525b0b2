"""The AgentPipeline spec (agentprod.io/v1alpha1) as pydantic models: the single source of the
CRD's schema (`crds.build_crd`) and the typed view the reconcile functions work on.

Field names are the Kubernetes ones (camelCase); descriptions become the CRD's documentation.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from agentprod.models import PRIORITY_TOPIC_SUFFIX, priority_topic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NAME_PATTERN = r"^[%a-zA-Z0-9_-]+$"  # RocketMQ topic and group names
#: A Kubernetes resource quantity (`100m`, `1.5Gi`, `2`, `1e3`), non-negative: the grammar of
#: k8s.io/apimachinery's resource.Quantity without its sign.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: A container environment variable name (what the Pod API accepts).
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
#: A resource name (`cpu`, `memory`, `ephemeral-storage`, `nvidia.com/gpu`).
RESOURCE_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)
MAX_RESOURCES = 16
MAX_ENV = 128

#: An int-or-string quantity: the CRD marks it `x-kubernetes-int-or-string` (crds.py).
Quantity = Annotated[
    Annotated[int, Field(ge=0)]
    | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=64)],
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]
ResourceName = Annotated[
    str, StringConstraints(pattern=RESOURCE_NAME_PATTERN, min_length=1, max_length=253)
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MessageType(enum.StrEnum):
    NORMAL = "NORMAL"
    FIFO = "FIFO"
    DELAY = "DELAY"
    TRANSACTION = "TRANSACTION"


class DeletionPolicy(enum.StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class RocketMQSpec(_Spec):
    nameServer: str = Field(
        min_length=1, description="Name server(s) for admin calls, host:port, ;-separated."
    )
    endpoint: str = Field(min_length=1, description="Proxy gRPC endpoint the workers use.")
    cluster: str = Field(default="DefaultCluster", min_length=1, description="Broker cluster.")
    credentialsSecret: str | None = Field(
        default=None, description="Secret with keys accessKey and secretKey (ACL), optional."
    )


class TopicSpec(_Spec):
    name: str = Field(min_length=1, max_length=127, pattern=NAME_PATTERN, description="Topic.")
    queues: int = Field(
        default=8, ge=1, le=1024, description="Read/write queues; can grow, never shrink."
    )
    messageType: MessageType = Field(default=MessageType.NORMAL, description="message.type.")


#: Longest request topic name: its high-priority topic (`<request>-high`) must fit 127 too.
REQUEST_NAME_MAX = 127 - len(PRIORITY_TOPIC_SUFFIX)


class TopicsSpec(_Spec):
    request: TopicSpec = Field(
        description="Tasks published by the API, consumed by workers. Tasks submitted with "
        "`priority: high` go to `<request>-high`, made with the same queues and message type."
    )
    result: TopicSpec = Field(description="Results published by workers for downstream services.")

    @model_validator(mode="after")
    def _distinct(self) -> TopicsSpec:
        if self.request.name == self.result.name:
            raise ValueError("topics.request.name and topics.result.name must differ")
        if len(self.request.name) > REQUEST_NAME_MAX:
            raise ValueError(f"topics.request.name: at most {REQUEST_NAME_MAX} characters")
        if self.result.name == self.priority.name:
            raise ValueError("topics.result.name must differ from topics.request.name + '-high'")
        return self

    @property
    def priority(self) -> TopicSpec:
        """The high-priority request topic: `<request>-high`, queues and type as the request's."""
        return self.request.model_copy(update={"name": priority_topic(self.request.name)})

    @property
    def all(self) -> tuple[TopicSpec, ...]:
        """Every topic of the pipeline: request, its high-priority twin, result."""
        return (self.request, self.priority, self.result)


class ConsumerGroupSpec(_Spec):
    name: str = Field(min_length=1, max_length=255, pattern=NAME_PATTERN, description="Group.")
    maxRetries: int = Field(
        default=16, ge=0, le=64, description="Redeliveries before a task fails (retryMaxTimes)."
    )


class SecretKeyRef(_Spec):
    name: str = Field(min_length=1, description="Secret name.")
    key: str = Field(min_length=1, description="Key holding the Redis URL.")


class RedisSpec(_Spec):
    url: str | None = Field(default=None, description="redis://host:port/db")
    secretRef: SecretKeyRef | None = Field(default=None, description="Secret key with the URL.")

    @model_validator(mode="after")
    def _one_source(self) -> RedisSpec:
        if self.url is None and self.secretRef is None:
            raise ValueError("redis needs url or secretRef")
        return self


class SecretValueRef(_Spec):
    name: str = Field(min_length=1, description="Secret name.")
    key: str = Field(min_length=1, description="Key in the Secret.")


class ModelPrice(_Spec):
    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")


class ModelsSpec(_Spec):
    """The model server the LLM agents (chat, planner) call, through the openai SDK."""

    baseURL: str | None = Field(
        default=None,
        min_length=1,
        description="OpenAI-compatible endpoint (OPENAI_BASE_URL), e.g. http://llm:8080/v1; "
        "unset: OpenAI itself, or Gemini's endpoint with a Gemini key.",
    )
    fast: str = Field(min_length=1, description="Model id of the fast tier (LLM_MODEL_FAST).")
    strong: str | None = Field(
        default=None, min_length=1, description="Model id of the strong tier (LLM_MODEL_STRONG)."
    )
    apiKeySecret: SecretValueRef | None = Field(
        default=None, description="Secret key holding the API key (OPENAI_API_KEY)."
    )
    geminiKeySecret: SecretValueRef | None = Field(
        default=None, description="Secret key holding a Gemini API key (GEMINI_API_KEY)."
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model id (LLM_PRICES), for cost figures."
    )
    requestsPerMinute: int = Field(
        default=0, ge=0, description="Requests per minute per model, all workers (0: no limit)."
    )
    tokensPerMinute: int = Field(
        default=0, ge=0, description="Tokens per minute per model, all workers (0: no limit)."
    )
    timeoutSeconds: float = Field(default=60.0, gt=0, le=600, description="Per model call.")


class AgentSpec(_Spec):
    name: str = Field(default="tagger", min_length=1, description="Registered agent name.")
    config: dict[str, Any] = Field(default_factory=dict, description="Agent configuration.")
    models: ModelsSpec | None = Field(
        default=None, description="Model configuration of LLM agents (chat, planner)."
    )


class ResourcesSpec(_Spec):
    """The worker container's resources (a Pod's `resources`, without `claims`)."""

    requests: dict[ResourceName, Quantity] | None = Field(
        default=None, max_length=MAX_RESOURCES, description="Requested quantities (cpu: 100m)."
    )
    limits: dict[ResourceName, Quantity] | None = Field(
        default=None, max_length=MAX_RESOURCES, description="Limits (memory: 512Mi)."
    )


class KeyRef(_Spec):
    name: str = Field(min_length=1, max_length=253, description="Object name.")
    key: str = Field(min_length=1, max_length=253, description="Key in the object.")
    optional: bool | None = Field(default=None, description="Allow a missing object or key.")


class FieldRef(_Spec):
    fieldPath: str = Field(min_length=1, max_length=256, description="e.g. metadata.name")
    apiVersion: str | None = Field(default=None, min_length=1, description="Default v1.")


class ResourceFieldRef(_Spec):
    resource: str = Field(min_length=1, max_length=256, description="e.g. limits.memory")
    containerName: str | None = Field(default=None, min_length=1)
    divisor: Quantity | None = Field(default=None, description="Unit of the value (1Mi).")


class EnvVarSource(_Spec):
    """Exactly one source (checked by the API server and here)."""

    secretKeyRef: KeyRef | None = None
    configMapKeyRef: KeyRef | None = None
    fieldRef: FieldRef | None = None
    resourceFieldRef: ResourceFieldRef | None = None

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        given = [self.secretKeyRef, self.configMapKeyRef, self.fieldRef, self.resourceFieldRef]
        if sum(value is not None for value in given) != 1:
            raise ValueError(
                "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, "
                "fieldRef, resourceFieldRef"
            )
        return self


class EnvVar(_Spec):
    """One container environment variable: a `value` or a `valueFrom`, not both."""

    name: str = Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(default=None, max_length=32768)
    valueFrom: EnvVarSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.valueFrom is not None:
            raise ValueError(f"env {self.name}: value and valueFrom are exclusive")
        return self


class WorkerSpec(_Spec):
    image: str = Field(min_length=1, description="Worker image (agentprod with your agents).")
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    concurrency: int = Field(default=8, ge=1, le=1024, description="Tasks per worker at once.")
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Container resources (requests/limits)."
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=MAX_ENV,
        description="Extra container environment variables (name + value or valueFrom).",
    )
    terminationGracePeriodSeconds: int = Field(
        default=30, ge=1, le=3600, description="Drain time on scale-in; tasks finish within it."
    )


class ProviderScalingSpec(_Spec):
    """How the scaler treats a model provider at its limit (429s, the own rpm/tpm limiter)."""

    enabled: bool = Field(
        default=True,
        description="Cap the replicas at what the provider serves while its calls are refused.",
    )
    maxReplicasWhenLimited: int | None = Field(
        default=None, ge=1, le=1000, description="Upper bound of that cap (unset: measured only)."
    )


class ScalingSpec(_Spec):
    minReplicas: int = Field(default=0, ge=0, le=1000)
    maxReplicas: int = Field(default=20, ge=1, le=1000)
    lagPerReplica: int = Field(default=100, ge=1, description="Backlog one replica holds.")
    activationLag: int = Field(default=1, ge=1, description="Lag that wakes 0 → 1 replica.")
    pollSeconds: int = Field(default=15, ge=1, le=3600)
    cooldownSeconds: int = Field(default=300, ge=0, description="Idle time before scaling to 0.")
    scaleDownStabilizationSeconds: int = Field(
        default=30, ge=0, le=3600, description="Scale down to the window's highest need only."
    )
    targetDrainSeconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="Rate mode: size for arrivals plus draining the backlog within this time.",
    )
    provider: ProviderScalingSpec = Field(
        default_factory=ProviderScalingSpec,
        description="Provider-aware cap (reason ProviderLimited).",
    )
    paused: bool = Field(
        default=False,
        description="Leave replicas as they are (also annotation "
        "agentprod.io/scaling-paused: 'true').",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.minReplicas > self.maxReplicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class AgentPipelineSpec(_Spec):
    rocketmq: RocketMQSpec
    topics: TopicsSpec
    consumerGroup: ConsumerGroupSpec
    redis: RedisSpec
    agent: AgentSpec = Field(default_factory=AgentSpec)
    worker: WorkerSpec
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    deletionPolicy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain keeps topics and group when the pipeline is deleted; Delete removes.",
    )


#: CEL rules of nested objects, by their JSON path in the spec (the API server enforces them;
#: pydantic the same in-process).
NESTED_VALIDATIONS: dict[tuple[str, ...], list[dict[str, str]]] = {
    ("worker", "resources"): [
        {
            "rule": "!has(self.requests) || !has(self.limits) || self.requests.all(k, "
            "!(k in self.limits) || "
            "quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
            "message": "worker.resources: a request must not exceed its limit",
        },
    ],
    ("worker", "env", "[]"): [
        {
            "rule": "!(has(self.value) && has(self.valueFrom))",
            "message": "env: value and valueFrom are exclusive",
        },
    ],
    ("worker", "env", "[]", "valueFrom"): [
        {
            "rule": "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef), "
            "has(self.resourceFieldRef)].filter(x, x).size() == 1",
            "message": "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, "
            "resourceFieldRef",
        },
    ],
}

# CEL rules the API server enforces (pydantic enforces the same in-process).
VALIDATIONS: dict[str, list[dict[str, str]]] = {
    "scaling": [
        {
            "rule": "self.minReplicas <= self.maxReplicas",
            "message": "scaling.minReplicas must not exceed scaling.maxReplicas",
        },
    ],
    "topics": [
        {
            "rule": "self.request.name != self.result.name",
            "message": "topics.request.name and topics.result.name must differ",
        },
        {
            "rule": f"size(self.request.name) <= {REQUEST_NAME_MAX}",
            "message": f"topics.request.name: at most {REQUEST_NAME_MAX} characters (its "
            f"high-priority topic adds '{PRIORITY_TOPIC_SUFFIX}')",
        },
        {
            "rule": f"self.result.name != self.request.name + '{PRIORITY_TOPIC_SUFFIX}'",
            "message": "topics.result.name must differ from topics.request.name + "
            f"'{PRIORITY_TOPIC_SUFFIX}'",
        },
    ],
    "redis": [
        {"rule": "has(self.url) || has(self.secretRef)", "message": "redis needs url or secretRef"},
    ],
}
