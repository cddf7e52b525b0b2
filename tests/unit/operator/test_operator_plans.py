"""Pure control-plane decisions: topic and group plans, backoff, conditions, the Deployment."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentprod_operator import conditions, specs
from agentprod_operator.conditions import Condition
from agentprod_operator.reconcile import plans, workloads
from agentprod_operator.reconcile.plans import Act, SeenGroup, SeenTopic


def topic(queues: int = 8, kind: str = "NORMAL") -> specs.TopicSpec:
    return specs.TopicSpec(name="T", queues=queues, messageType=specs.MessageType(kind))


@pytest.mark.parametrize(
    ("want", "seen", "act", "queues"),
    [
        (topic(8), None, Act.CREATE, 8),
        (topic(8), SeenTopic(8, "NORMAL"), Act.KEEP, 8),
        (topic(16), SeenTopic(8, "NORMAL"), Act.UPDATE, 16),
        (topic(8, "FIFO"), SeenTopic(8, "NORMAL"), Act.UPDATE, 8),
        (topic(8), SeenTopic(16, "NORMAL"), Act.REFUSE, 16),
    ],
)
def test_plan_topic(want: specs.TopicSpec, seen: SeenTopic | None, act: Act, queues: int) -> None:
    plan = plans.plan_topic(want, seen)
    assert (plan.act, plan.queues) == (act, queues)
    if act is Act.REFUSE:
        assert "16 queues" in plan.reason
        assert "not supported" in plan.reason


def test_plan_group() -> None:
    want = specs.ConsumerGroupSpec(name="G", maxRetries=3)
    assert plans.plan_group(want, None).act is Act.CREATE
    assert plans.plan_group(want, SeenGroup(3)).act is Act.KEEP
    assert plans.plan_group(want, SeenGroup(16)).act is Act.UPDATE


def test_backoff_doubles_to_a_cap() -> None:
    assert [plans.backoff_seconds(n, base=2, cap=20) for n in range(6)] == [0, 2, 4, 8, 16, 20]


def test_conditions_keep_transition_time_while_status_holds() -> None:
    first = conditions.merge(
        [], [Condition("Ready", False, "RocketMQUnavailable", "x")], now="t1", generation=1
    )
    same = conditions.merge(
        first, [Condition("Ready", False, "RocketMQUnavailable", "y")], now="t2", generation=2
    )
    flipped = conditions.merge(
        same, [Condition("Ready", True, "Reconciled")], now="t3", generation=2
    )
    assert same[0]["lastTransitionTime"] == "t1"
    assert (flipped[0]["status"], flipped[0]["lastTransitionTime"]) == ("True", "t3")


EXAMPLE = yaml.safe_load((Path(__file__).parents[3] / "examples" / "pipeline.yaml").read_text())


def pipeline(**changes: Any) -> specs.AgentPipelineSpec:
    raw = EXAMPLE["spec"] | changes
    return specs.AgentPipelineSpec.model_validate(raw)


def test_example_pipeline_is_valid() -> None:
    parsed = pipeline()
    assert parsed.topics.request.name == "TopicTest"
    assert parsed.deletionPolicy is specs.DeletionPolicy.RETAIN


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas"),
        ({"topics": {"request": {"name": "A"}, "result": {"name": "A"}}}, "must differ"),
        ({"redis": {}}, "url or secretRef"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_specs(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pipeline(**changes)


def test_deployment_wires_the_worker() -> None:
    spec = pipeline(
        rocketmq={
            "nameServer": "ns:9876",
            "endpoint": "proxy:8081",
            "credentialsSecret": "mq-creds",
        },
        redis={"secretRef": {"name": "redis", "key": "url"}},
        worker={
            "image": "agentprod:9",
            "concurrency": 4,
            "terminationGracePeriodSeconds": 60,
            "env": [{"name": "EXTRA", "value": "1"}],
        },
    )
    deployment = workloads.desired_deployment(pipeline="p", namespace="ns", spec=spec, replicas=2)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}
    assert env["MQ_ENDPOINT"] == "proxy:8081"
    assert env["MQ_TOPIC_REQUEST"] == "TopicTest"
    assert env["MQ_GROUP_AGENT"] == "GID_AGENT_PYTHON"
    assert env["MQ_MAX_RETRIES"] == "16"
    assert env["WORKER_CONCURRENCY"] == "4"
    assert env["WORKER_SHUTDOWN_GRACE_SECONDS"] == "55"
    assert env["REDIS_URL"] == {"secretKeyRef": {"name": "redis", "key": "url"}}
    assert env["MQ_SECRET_KEY"] == {"secretKeyRef": {"name": "mq-creds", "key": "secretKey"}}
    assert env["EXTRA"] == "1"
    assert pod["terminationGracePeriodSeconds"] == 60
    assert container["image"] == "agentprod:9"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # unready: Redis down
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"]["matchLabels"] == workloads.selector_labels("p")


def test_worker_pods_have_a_writable_home_on_a_read_only_root() -> None:
    """The RocketMQ client writes ~/logs at import: HOME lives on an emptyDir at /tmp."""
    deployment = workloads.desired_deployment(
        pipeline="p", namespace="ns", spec=pipeline(), replicas=1
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["HOME"] == "/tmp"
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def test_chat_example_wires_the_model_configuration() -> None:
    """examples/chat-pipeline.yaml is a valid spec; spec.agent.models becomes the LLM layer's
    variables (llm/config.py), the API key by Secret reference only."""
    example = yaml.safe_load(
        (Path(__file__).parents[3] / "examples" / "chat-pipeline.yaml").read_text()
    )
    spec = specs.AgentPipelineSpec.model_validate(example["spec"])
    assert spec.agent.models is not None
    spec.agent.models.apiKeySecret = specs.SecretValueRef(name="llm-key", key="apiKey")
    deployment = workloads.desired_deployment(pipeline="chat", namespace="n", spec=spec, replicas=1)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}
    assert env["AGENT"] == "chat"
    assert env["OPENAI_BASE_URL"] == "http://llm:8080/v1"
    assert env["LLM_MODEL_FAST"] == env["LLM_MODEL_STRONG"] == "smollm2-135m"
    assert env["LLM_RPM"] == "600"
    assert env["LLM_TPM"] == "200000"
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "llm-key", "key": "apiKey"}}
    assert json.loads(env["LLM_PRICES"]) == {"smollm2-135m": {"input": 0.0, "output": 0.0}}
    assert "GEMINI_API_KEY" not in env
