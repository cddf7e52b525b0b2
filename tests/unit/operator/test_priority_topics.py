"""The high-priority request topic on the control plane: the spec names it `<request>-high`
(same queues and type), refuses names it cannot make, the workers are told its name, and the
scaler's lag is the sum over both request topics."""

from __future__ import annotations

from typing import Any

import pytest
from agentprod_operator import specs
from agentprod_operator.reconcile import plans, workloads
from agentprod_operator.rocketmq.models import ConsumeStats, MessageQueue, QueueOffsets
from agentprod_operator.scaling import sampling
from pydantic import ValidationError


def spec(**topics: Any) -> specs.AgentPipelineSpec:
    return specs.AgentPipelineSpec.model_validate(
        {
            "rocketmq": {"nameServer": "127.0.0.1:9876", "endpoint": "127.0.0.1:8081"},
            "topics": topics
            or {
                "request": {"name": "Req", "queues": 4, "messageType": "NORMAL"},
                "result": {"name": "Res"},
            },
            "consumerGroup": {"name": "GID"},
            "redis": {"url": "redis://redis:6379/0"},
            "worker": {"image": "agentprod:test"},
        }
    )


def test_the_high_topic_follows_the_request_topic() -> None:
    topics = spec().topics
    assert topics.priority == specs.TopicSpec(name="Req-high", queues=4)
    assert [topic.name for topic in topics.all] == ["Req", "Req-high", "Res"]
    # The reconcile plans it like the others: created when missing, kept when as wanted.
    assert plans.plan_topic(topics.priority, None).act is plans.Act.CREATE
    seen = plans.SeenTopic(queues=4, message_type="NORMAL")
    assert plans.plan_topic(topics.priority, seen).act is plans.Act.KEEP


def test_the_workers_are_told_the_high_topic() -> None:
    env = {item["name"]: item.get("value") for item in workloads.worker_env(spec())}
    assert env["MQ_TOPIC_REQUEST"] == "Req"
    assert env["MQ_TOPIC_REQUEST_HIGH"] == "Req-high"


@pytest.mark.parametrize(
    ("topics", "message"),
    [
        ({"request": {"name": "R" * 123}, "result": {"name": "Res"}}, "at most 122"),
        ({"request": {"name": "Req"}, "result": {"name": "Req-high"}}, "-high"),
    ],
)
def test_names_the_high_topic_cannot_take_are_refused(topics: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**topics)


def test_the_crd_carries_the_same_rules() -> None:
    rules = [rule["rule"] for rule in specs.VALIDATIONS["topics"]]
    assert "size(self.request.name) <= 122" in rules
    assert "self.result.name != self.request.name + '-high'" in rules


def _stats(topic: str, *offsets: tuple[int, int]) -> ConsumeStats:
    return ConsumeStats(
        group="GID",
        topic=topic,
        queues=tuple(
            QueueOffsets(MessageQueue(topic, "broker-a", n), broker, consumer)
            for n, (broker, consumer) in enumerate(offsets)
        ),
    )


def test_the_scaler_sums_the_lag_of_both_request_topics() -> None:
    normal = _stats("Req", (10, 4), (7, 7))  # lag 6, consumed 11
    high = _stats("Req-high", (5, 2))  # lag 3, consumed 2
    assert sampling.backlog([normal, high]) == (9, 13)
    assert sampling.backlog([normal]) == (6, 11)
