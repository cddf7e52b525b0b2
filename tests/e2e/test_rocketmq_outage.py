"""RocketMQ going away and coming back: Ready=False/RocketMQUnavailable, then Ready=True again
without anyone touching the AgentPipeline; and a `deletionPolicy: Delete` pipeline deleted while
RocketMQ is down is still released (bounded retries, warning Event) instead of wedging its
namespace. Uses its own RocketMQ so the session's stays up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import paths
from harness.kubernetes import ControlPlane
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

from tests.e2e.conftest import Cluster


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
    control_plane: ControlPlane, operator: Path, own_rocketmq: RocketMQ
) -> None:
    namespace = "e2e-outage"
    control_plane.kubectl("create", "namespace", namespace)
    cluster = Cluster(control_plane, namespace, own_rocketmq)
    try:
        cluster.apply(cluster.manifest())
        cluster.wait_condition("price-alerts", "Ready", "True")
        generation = cluster.get("agentpipeline", "price-alerts")["metadata"]["generation"]  # type: ignore[index]

        own_rocketmq.stop()
        down = cluster.wait_condition("price-alerts", "Ready", "False", "RocketMQUnavailable")
        assert own_rocketmq.namesrv_addr in down["message"]

        own_rocketmq.start()
        cluster.wait_condition("price-alerts", "Ready", "True", timeout=120)
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
