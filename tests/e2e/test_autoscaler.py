"""The operator's autoscaler on the real stack: RocketMQ lag with no worker running scales the
worker Deployment up (through its scale subresource) and the status says why; once worker
processes (outside the cluster, on the same topic and group) drain the backlog it comes back
down through the policy to `minReplicas: 0`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.apps import AgentprodProcess
from harness.redis import RedisServer
from rocketmq import ClientConfiguration, Credentials, Message, Producer

from tests.e2e.conftest import Cluster, wait_for
from tests.e2e.test_pipeline_operator import admin_call

MESSAGES = 1000
MAX_REPLICAS = 5


def publish(cluster: Cluster, count: int) -> None:
    producer = Producer(
        ClientConfiguration(cluster.rocketmq.endpoint, Credentials("", ""), request_timeout=3),
        (cluster.request_topic,),
    )
    producer.startup()
    try:
        pending = []
        for i in range(count):
            message = Message()
            message.topic = cluster.request_topic
            message.body = f'{{"task_id": "no-record-{i}"}}'.encode()
            pending.append(producer.send_async(message))
        for future in pending:
            future.result(timeout=30)
    finally:
        producer.shutdown()


def replicas(cluster: Cluster) -> int:
    deployment = cluster.get("deployment", "price-alerts-worker") or {}
    return int(deployment.get("spec", {}).get("replicas", -1))


def status(cluster: Cluster) -> dict[str, Any]:
    return dict((cluster.get("agentpipeline", "price-alerts") or {}).get("status") or {})


def test_scales_up_on_lag_and_back_to_zero(
    cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    scaling = {
        "minReplicas": 0,
        "maxReplicas": MAX_REPLICAS,
        "lagPerReplica": 100,
        "pollSeconds": 2,
        "cooldownSeconds": 6,
    }
    cluster.apply(cluster.manifest(scaling=scaling, redis={"url": redis_server.url}))
    cluster.wait_condition("price-alerts", "Ready", "True")
    publish(cluster, MESSAGES)

    wait_for(
        lambda: replicas(cluster) == MAX_REPLICAS,
        timeout=120,
        what=f"{MAX_REPLICAS} replicas for lag {MESSAGES}",
    )
    stored = admin_call(cluster, "max_offsets", cluster.request_topic).total
    assert stored >= MESSAGES  # the producer retries a send that timed out: at least once
    wait_for(lambda: status(cluster).get("lag") == stored, timeout=30, what=f"lag {stored}")
    seen = status(cluster)
    assert seen["desiredReplicas"] == MAX_REPLICAS
    assert seen["lastScaleTime"]
    scaling_condition = cluster.condition("price-alerts", "ScalingActive")
    assert scaling_condition is not None
    assert scaling_condition["message"]
    events = cluster.plane.kubectl("get", "events", "-n", cluster.namespace, "-o", "json").stdout
    assert '"reason": "Scaled"' in events

    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": cluster.rocketmq.endpoint,
        "MQ_TOPIC_REQUEST": cluster.request_topic,
        "MQ_TOPIC_RESULT": cluster.result_topic,
        "MQ_GROUP_AGENT": cluster.group,
        "AGENT": "echo",
        "WORKER_CONCURRENCY": "32",
        "LOG_LEVEL": "WARNING",
    }
    workers = [
        AgentprodProcess(command="worker", env=env, log_dir=tmp_path, name=f"w{i}")
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_healthy()
        wait_for(lambda: status(cluster).get("lag") == 0, timeout=120, what="backlog drained")
        steps: list[int] = []

        def at_zero() -> bool:
            now = replicas(cluster)
            if not steps or steps[-1] != now:
                steps.append(now)
            return now == 0

        wait_for(at_zero, timeout=180, what="scaled back to minReplicas 0")
        assert steps[0] == MAX_REPLICAS
        assert len(steps) >= 3, f"went straight to zero: {steps}"  # through the policy
    finally:
        for worker in workers:
            assert worker.terminate() == 0
