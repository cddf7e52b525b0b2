"""The worker Deployment a pipeline wants (pure): image, env wiring, probes, grace period.

Replicas are not part of the desired template: they are set once at creation and belong to
the scaler afterwards, so reconciling never fights it.
"""

from __future__ import annotations

import json
from typing import Any

from agentprod_operator import specs

HEALTH_PORT = 8001
MANAGER = "agentprod-operator"
#: The pod's grace period minus this is the worker's drain (WORKER_SHUTDOWN_GRACE_SECONDS).
#: The worker starts draining at SIGTERM without waiting out its pending long-poll; after the
#: drain it spends at most 2 s handing back what that receive brought (worker.py
#: PENDING_RECEIVE_WAIT_SECONDS) and about 1 s closing its clients, all inside this margin.
DRAIN_MARGIN_SECONDS = 5
#: Writable scratch space of the worker (its root filesystem is read-only): HOME and temp files.
TMP_MOUNT = "/tmp"
TMP_SIZE_LIMIT = "64Mi"


def name_for(pipeline: str) -> str:
    return f"{pipeline}-worker"


def selector_labels(pipeline: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "agentprod-worker", "app.kubernetes.io/instance": pipeline}


def labels(pipeline: str) -> dict[str, str]:
    return selector_labels(pipeline) | {
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/part-of": "agentprod",
        "app.kubernetes.io/managed-by": MANAGER,
    }


def worker_env(spec: specs.AgentPipelineSpec) -> list[dict[str, Any]]:
    """The variables `agentprod worker` reads (the seed's names), then the user's own."""
    grace = spec.worker.terminationGracePeriodSeconds
    env: list[dict[str, Any]] = [
        # The root filesystem is read-only: HOME on the /tmp emptyDir, where the RocketMQ
        # client creates its log folder (~/logs/rocketmq_python) at import time.
        {"name": "HOME", "value": TMP_MOUNT},
        {"name": "MQ_ENDPOINT", "value": spec.rocketmq.endpoint},
        {"name": "MQ_NAMESRV", "value": spec.rocketmq.nameServer},
        {"name": "MQ_TOPIC_REQUEST", "value": spec.topics.request.name},
        {"name": "MQ_TOPIC_REQUEST_HIGH", "value": spec.topics.priority.name},
        {"name": "MQ_TOPIC_RESULT", "value": spec.topics.result.name},
        {"name": "MQ_GROUP_AGENT", "value": spec.consumerGroup.name},
        {"name": "MQ_MAX_RETRIES", "value": str(spec.consumerGroup.maxRetries)},
        {"name": "AGENT", "value": spec.agent.name},
        {"name": "AGENT_CONFIG", "value": json.dumps(spec.agent.config, sort_keys=True)},
        {"name": "WORKER_CONCURRENCY", "value": str(spec.worker.concurrency)},
        {
            "name": "WORKER_SHUTDOWN_GRACE_SECONDS",
            "value": str(max(1, grace - DRAIN_MARGIN_SECONDS)),
        },
        {"name": "WORKER_HEALTH_PORT", "value": str(HEALTH_PORT)},
    ]
    if spec.redis.secretRef is not None:
        ref = spec.redis.secretRef
        env.append(
            {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        )
    else:
        env.append({"name": "REDIS_URL", "value": spec.redis.url})
    if spec.rocketmq.credentialsSecret:
        for variable, key in (("MQ_ACCESS_KEY", "accessKey"), ("MQ_SECRET_KEY", "secretKey")):
            env.append(
                {
                    "name": variable,
                    "valueFrom": {
                        "secretKeyRef": {"name": spec.rocketmq.credentialsSecret, "key": key}
                    },
                }
            )
    extra = [variable.model_dump(exclude_none=True) for variable in spec.worker.env]
    return env + model_env(spec.agent.models) + extra


def model_env(models: specs.ModelsSpec | None) -> list[dict[str, Any]]:
    """The LLM layer's variables (app/agentprod/llm/config.py) from spec.agent.models."""
    if models is None:
        return []
    env: list[dict[str, Any]] = [
        {"name": "LLM_MODEL_FAST", "value": models.fast},
        {"name": "LLM_TIMEOUT_SECONDS", "value": str(models.timeoutSeconds)},
        {"name": "LLM_RPM", "value": str(models.requestsPerMinute)},
        {"name": "LLM_TPM", "value": str(models.tokensPerMinute)},
    ]
    if models.baseURL:
        env.append({"name": "OPENAI_BASE_URL", "value": models.baseURL})
    if models.strong:
        env.append({"name": "LLM_MODEL_STRONG", "value": models.strong})
    if models.prices:
        prices = {model: price.model_dump() for model, price in models.prices.items()}
        env.append({"name": "LLM_PRICES", "value": json.dumps(prices, sort_keys=True)})
    for variable, ref in (
        ("OPENAI_API_KEY", models.apiKeySecret),
        ("GEMINI_API_KEY", models.geminiKeySecret),
    ):
        if ref is not None:
            env.append(
                {
                    "name": variable,
                    "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
                }
            )
    return env


def desired_deployment(
    *, pipeline: str, namespace: str, spec: specs.AgentPipelineSpec, replicas: int
) -> dict[str, Any]:
    probe = {"periodSeconds": 10, "timeoutSeconds": 3}
    alive = {"httpGet": {"path": "/healthz", "port": "health"}}  # the loop ticks
    ready = {"httpGet": {"path": "/readyz", "port": "health"}}  # and reaches Redis
    container: dict[str, Any] = {
        "name": "worker",
        "image": spec.worker.image,
        "imagePullPolicy": spec.worker.imagePullPolicy,
        "args": ["worker"],
        # A worker that stops on its configuration (exit 2, one line naming the variable)
        # leaves that line in the pod status, where the operator reads it (`pods`).
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": worker_env(spec),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
        "livenessProbe": probe | alive | {"failureThreshold": 6},
        "readinessProbe": probe | ready | {"failureThreshold": 2},
        "resources": spec.worker.resources.model_dump(exclude_none=True),
        "volumeMounts": [{"name": "tmp", "mountPath": TMP_MOUNT}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name_for(pipeline),
            "namespace": namespace,
            "labels": labels(pipeline),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(pipeline)},
            "template": {
                "metadata": {
                    "labels": labels(pipeline),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(HEALTH_PORT),
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": spec.worker.terminationGracePeriodSeconds,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}],
                },
            },
        },
    }


def initial_replicas(spec: specs.AgentPipelineSpec) -> int:
    """Replicas at creation: the floor of the scaling range, but at least one worker."""
    return max(1, spec.scaling.minReplicas)
