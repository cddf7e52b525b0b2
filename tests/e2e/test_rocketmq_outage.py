"""RocketMQ going away and coming back: Ready=False/RocketMQUnavailable, then Ready=True again
without anyone touching the AgentPipeline, and meanwhile the autoscaler, unable to read the lag,
holds the worker replicas (ScalingActive reason NoData) where a scaler reading "no answer" as
"no lag" would drop them; and a `deletionPolicy: Delete` pipeline deleted while RocketMQ is
down is still released (bounded retries, warning Event) instead of wedging its namespace.
Uses its own RocketMQ so the session's stays up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import paths
from harness.kubernetes import ControlPlane
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

from tests.e2e.helpers import Cluster, publish, replicas, wait_for

POLL_SECONDS = 2


@pytest.fixture
def own_rocketmq(tmp_path: Path) -> Iterator[RocketMQ]:
    server = RocketMQ(
        home=tmp_path / "rocketmq",
        lib=ensure_jars(cache=paths.cache_dir()),
        ports=RocketMQPorts.for_tests(shift=8),
    )
    server.start()
    yield server
    server.stop()


def test_unavailable_then_recovered(
    control_plane: ControlPlane, operator: Path, own_rocketmq: RocketMQ, redis_server: RedisServer
) -> None:
    namespace = "e2e-outage"
    control_plane.kubectl("create", "namespace", namespace)
    cluster = Cluster(control_plane, namespace, own_rocketmq)
    scaling = {  # nothing slows a scale-down but the policy's rate limit
        "minReplicas": 0,
        "maxReplicas": 6,
        "lagPerReplica": 100,
        "pollSeconds": POLL_SECONDS,
        "cooldownSeconds": 0,
        "scaleDownStabilizationSeconds": 0,
    }
    try:
        cluster.apply(cluster.manifest(scaling=scaling, redis={"url": redis_server.url}))
        cluster.wait_condition("price-alerts", "Ready", "True")
        generation = cluster.get("agentpipeline", "price-alerts")["metadata"]["generation"]  # type: ignore[index]
        publish(cluster, 300)
        wait_for(lambda: replicas(cluster) == 3, timeout=60, what="3 replicas for lag 300")

        own_rocketmq.stop()
        down = cluster.wait_condition("price-alerts", "Ready", "False", "RocketMQUnavailable")
        assert own_rocketmq.namesrv_addr in down["message"]
        held = cluster.wait_condition("price-alerts", "ScalingActive", "True", "NoData")
        assert "holding 3" in held["message"]
        for _ in range(5):  # five more polls without a lag reading: still 3
            time.sleep(POLL_SECONDS)
            assert replicas(cluster) == 3

        own_rocketmq.start()
        cluster.wait_condition("price-alerts", "Ready", "True", timeout=120)
        cluster.wait_condition("price-alerts", "ScalingActive", "True", "Target", timeout=60)
        # scaling resumes from real readings: the 300 messages still wait, so 3 replicas (a
        # broker still loading its queues may first report less, which this policy, with no
        # stabilization window, follows for a poll or two)
        wait_for(lambda: replicas(cluster) == 3, timeout=60, what="3 replicas after recovery")
        after = cluster.get("agentpipeline", "price-alerts")
        assert after["metadata"]["generation"] == generation  # type: ignore[index]

        cluster.apply(cluster.manifest(deletionPolicy="Delete"))
        own_rocketmq.stop()
        cluster.plane.kubectl(
            "delete", "agentpipeline", "price-alerts", "-n", namespace, "--timeout=90s"
        )
        assert cluster.get("agentpipeline", "price-alerts") is None
        events = cluster.plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        assert "CleanupAbandoned" in events
    finally:
        cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
