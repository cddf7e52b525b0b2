"""`kubectl apply -f examples/pipeline.yaml` against a real API server with the operator
running and a real RocketMQ behind it.

Cases: topics (request, its `-high` twin, result) and group are created (checked with our
admin client and with mqadmin) and the worker Deployment is wired and owned, Ready=True; a
queue increase is applied and a decrease refused with NotSupported; an existing topic is
adopted, not recreated; deletion honours deletionPolicy Delete and Retain (the `-high` topic
too); invalid specs are rejected by the API server naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest
from rocketmq import ClientConfiguration, Credentials, Message, Producer

from tests.e2e.helpers import Cluster, admin_call, wait_for


def test_apply_creates_topics_group_and_workers(cluster: Cluster) -> None:
    cluster.apply(cluster.manifest())
    ready = cluster.wait_condition("price-alerts", "Ready", "True")
    assert ready["reason"] == "Reconciled"

    high = f"{cluster.request_topic}-high"  # the priority: high tasks' topic
    for topic in (cluster.request_topic, high, cluster.result_topic):
        config = admin_call(cluster, "topic_config", topic)
        assert (config.read_queues, config.write_queues, config.message_type) == (8, 8, "NORMAL")
    listed = cluster.rocketmq.mqadmin("topicList")
    assert cluster.request_topic in listed
    assert high in listed
    assert cluster.result_topic in listed
    group = admin_call(cluster, "group_config", cluster.group)
    assert group.retry_max_times == 16

    deployment = cluster.get("deployment", "price-alerts-worker")
    assert deployment is not None
    pipeline = cluster.get("agentpipeline", "price-alerts")
    assert pipeline is not None
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("AgentPipeline", pipeline["metadata"]["uid"])
    pod = deployment["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["MQ_TOPIC_REQUEST"] == cluster.request_topic
    assert env["MQ_TOPIC_REQUEST_HIGH"] == high
    assert env["MQ_GROUP_AGENT"] == cluster.group
    assert env["MQ_NAMESRV"] == cluster.rocketmq.namesrv_addr
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["AGENT"] == "tagger"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pipeline["status"]["observedGeneration"] == pipeline["metadata"]["generation"]
    printed = cluster.plane.kubectl("get", "ap", "-n", cluster.namespace).stdout
    assert "price-alerts" in printed
    assert "True" in printed


def test_queue_increase_applied_and_decrease_refused(cluster: Cluster) -> None:
    manifest = cluster.manifest()
    cluster.apply(manifest)
    cluster.wait_condition("price-alerts", "Ready", "True")
    manifest["spec"]["topics"]["request"]["queues"] = 16
    cluster.apply(manifest)
    wait_for(
        lambda: admin_call(cluster, "topic_config", cluster.request_topic).read_queues == 16,
        timeout=60,
        what="16 queues",
    )
    manifest["spec"]["topics"]["request"]["queues"] = 8
    cluster.apply(manifest)
    refused = cluster.wait_condition("price-alerts", "TopicsReady", "False", "NotSupported")
    assert "not supported" in refused["message"]
    assert cluster.condition("price-alerts", "Ready")["reason"] == "NotSupported"  # type: ignore[index]
    assert admin_call(cluster, "topic_config", cluster.request_topic).read_queues == 16


def test_existing_topic_is_adopted_not_recreated(cluster: Cluster) -> None:
    cluster.rocketmq.create_topic(cluster.request_topic, queues=8)
    producer = Producer(
        ClientConfiguration(cluster.rocketmq.endpoint, Credentials("", ""), request_timeout=3),
        (cluster.request_topic,),
    )
    producer.startup()
    try:
        for i in range(5):
            message = Message()
            message.topic = cluster.request_topic
            message.body = f"kept {i}".encode()
            producer.send(message)
    finally:
        producer.shutdown()
    before = admin_call(cluster, "max_offsets", cluster.request_topic).total
    assert before == 5

    cluster.apply(cluster.manifest())
    cluster.wait_condition("price-alerts", "Ready", "True")
    assert admin_call(cluster, "max_offsets", cluster.request_topic).total == before


@pytest.mark.parametrize(("policy", "kept"), [("Delete", False), ("Retain", True)])
def test_deletion_policy(cluster: Cluster, policy: str, kept: bool) -> None:
    cluster.apply(cluster.manifest(deletionPolicy=policy))
    cluster.wait_condition("price-alerts", "Ready", "True")
    cluster.plane.kubectl(
        "delete", "agentpipeline", "price-alerts", "-n", cluster.namespace, "--timeout=60s"
    )
    exists = admin_call(cluster, "topic_config", cluster.request_topic) is not None
    assert exists is kept
    assert (admin_call(cluster, "topic_config", cluster.result_topic) is not None) is kept
    high = f"{cluster.request_topic}-high"
    assert (admin_call(cluster, "topic_config", high) is not None) is kept
    assert (admin_call(cluster, "group_config", cluster.group) is not None) is kept


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"scaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas"),
        ({"topics": {"request": {"name": "A", "queues": -1}, "result": {"name": "B"}}}, "queues"),
        ({"topics": {"request": {"queues": 8}, "result": {"name": "B"}}}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_specs_are_rejected_by_the_api_server(
    cluster: Cluster, change: dict[str, Any], expected: str
) -> None:
    done = cluster.apply(cluster.manifest(name="invalid", **change), check=False)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    assert cluster.get("agentpipeline", "invalid") is None


def test_out_of_band_edit_of_the_workers_is_reverted(cluster: Cluster) -> None:
    """`kubectl set image` on the worker Deployment keeps the operator's hash annotation; the
    operator used to leave such drift in place with Ready True. Its periodic reconcile now
    compares the live template and puts the spec's image back."""
    cluster.apply(cluster.manifest())
    cluster.wait_condition("price-alerts", "Ready", "True")
    deployment = "price-alerts-worker"
    cluster.plane.kubectl(
        "-n", cluster.namespace, "set", "image", f"deployment/{deployment}", "worker=evil:latest"
    )

    def image() -> str:
        live = cluster.get("deployment", deployment)
        assert live is not None
        return str(live["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image() == "evil:latest"
    wanted = cluster.manifest()["spec"]["worker"]["image"]
    wait_for(lambda: image() == wanted, timeout=30, what=f"the operator to restore {wanted}")
