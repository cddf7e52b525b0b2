"""The operator's autoscaler on the real stack: with no worker running (an idle pipeline
scaled to 0), 2,000 messages on the request topic raise the worker Deployment's replicas to
min(max, ceil(lag / lagPerReplica)) within two polls (through its scale subresource), and the
status, an Event and the operator's metrics say why; once worker processes (outside the
cluster, on the same topic and group) drain the backlog it comes back down through the policy
to `minReplicas: 0`.
"""

from __future__ import annotations

import math
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness.apps import AgentprodProcess
from harness.redis import RedisServer

from tests.e2e.helpers import (
    OPERATOR_METRICS_PORT,
    Cluster,
    admin_call,
    publish,
    replicas,
    wait_for,
)

MESSAGES = 2000
MAX_REPLICAS = 8
LAG_PER_REPLICA = 400
POLL_SECONDS = 2
SLACK_SECONDS = 5  # a poll's own reads, the scale call, kubectl's view


def status(cluster: Cluster) -> dict[str, Any]:
    return dict((cluster.get("agentpipeline", "price-alerts") or {}).get("status") or {})


def operator_metrics() -> str:
    url = f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def test_scales_up_on_lag_and_back_to_zero(
    cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    scaling = {
        "minReplicas": 0,
        "maxReplicas": MAX_REPLICAS,
        "lagPerReplica": LAG_PER_REPLICA,
        "pollSeconds": POLL_SECONDS,
        "cooldownSeconds": 6,
    }
    cluster.apply(cluster.manifest(scaling=scaling, redis={"url": redis_server.url}))
    cluster.wait_condition("price-alerts", "Ready", "True")
    wait_for(lambda: replicas(cluster) == 0, timeout=60, what="idle: down to 0 workers")

    publish(cluster, MESSAGES)
    published = time.monotonic()
    stored = admin_call(cluster, "max_offsets", cluster.request_topic).total
    assert stored >= MESSAGES  # the producer retries a send that timed out: at least once
    expected = min(MAX_REPLICAS, math.ceil(stored / LAG_PER_REPLICA))
    wait_for(
        lambda: replicas(cluster) == expected,
        timeout=2 * POLL_SECONDS + SLACK_SECONDS,
        what=f"{expected} replicas for lag {stored} within two polls",
    )
    print(f"0 → {expected} replicas {time.monotonic() - published:.1f}s after publishing")
    wait_for(lambda: status(cluster).get("lag") == stored, timeout=30, what=f"lag {stored}")
    seen = status(cluster)
    assert seen["desiredReplicas"] == expected
    assert seen["lastScaleTime"]
    active = cluster.condition("price-alerts", "ScalingActive")
    assert active is not None
    assert (active["status"], active["reason"]) == ("True", "Target"), active
    assert f"→ {expected} (lag mode: lag " in active["message"]  # the rule and its inputs
    events = cluster.plane.kubectl("get", "events", "-n", cluster.namespace, "-o", "json").stdout
    assert f"→ {expected}: " in events  # the Scaled event of the step that reached it
    labels = f'namespace="{cluster.namespace}",pipeline="price-alerts"'
    exported = operator_metrics()
    assert f"agentprod_pipeline_lag{{{labels}}} {float(stored)}" in exported
    assert f"agentprod_pipeline_desired_replicas{{{labels}}} {float(expected)}" in exported
    state = 'agentprod_pipeline_scaling_reason="target"'
    assert f"agentprod_pipeline_scaling_reason{{{state},{labels}}} 1.0" in exported

    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": cluster.rocketmq.endpoint,
        "MQ_TOPIC_REQUEST": cluster.request_topic,
        "MQ_TOPIC_RESULT": cluster.result_topic,
        "MQ_GROUP_AGENT": cluster.group,
        "AGENT": "echo",
        "AGENTPROD_TEST_AGENTS": "true",
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
        steps: list[int] = []

        def observe() -> int:
            now = replicas(cluster)
            if not steps or steps[-1] != now:
                steps.append(now)
            return now

        def drained() -> bool:
            observe()
            return status(cluster).get("lag") == 0

        def at_zero() -> bool:
            return observe() == 0

        wait_for(drained, timeout=120, what="backlog drained")
        wait_for(at_zero, timeout=180, what="scaled back to minReplicas 0")
        assert steps[0] == expected
        assert len(steps) >= 3, f"went straight to zero: {steps}"  # through the policy
    finally:
        for worker in workers:
            assert worker.terminate() == 0
