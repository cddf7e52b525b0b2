"""Helpers of the e2e tests: kubectl-level access to a test namespace (`Cluster`), waiting,
and RocketMQ calls. The conftest and the test modules import these; no test module imports
another test module or the conftest."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from agentprod_operator.rocketmq.admin import RocketMQAdmin
from harness.apps import free_port
from harness.kubernetes import ControlPlane
from harness.rocketmq import RocketMQ
from rocketmq import ClientConfiguration, Credentials, Message, Producer

ROOT = Path(__file__).parents[2]
CRD_FILE = ROOT / "crds" / "agentpipelines.agentprod.io.yaml"
EXAMPLE = ROOT / "examples" / "pipeline.yaml"
OPERATOR_METRICS_PORT = free_port()


class Cluster:
    """kubectl-level helpers bound to one namespace and the session's RocketMQ."""

    def __init__(self, plane: ControlPlane, namespace: str, rocketmq: RocketMQ) -> None:
        self.plane = plane
        self.namespace = namespace
        self.rocketmq = rocketmq
        suffix = uuid.uuid4().hex[:8]
        self.request_topic = f"TopicTest_{suffix}"
        self.result_topic = f"TopicResult_{suffix}"
        self.group = f"GID_AGENT_{suffix}"

    def manifest(self, name: str = "price-alerts", **spec: Any) -> dict[str, Any]:
        """examples/pipeline.yaml pointed at the test RocketMQ, with unique names."""
        body = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
        body["metadata"] = {"name": name, "namespace": self.namespace}
        body["spec"]["rocketmq"] |= {
            "nameServer": self.rocketmq.namesrv_addr,
            "endpoint": self.rocketmq.endpoint,
        }
        body["spec"]["topics"]["request"]["name"] = self.request_topic
        body["spec"]["topics"]["result"]["name"] = self.result_topic
        body["spec"]["consumerGroup"]["name"] = self.group
        body["spec"] |= spec
        return body

    def apply(
        self, manifest: dict[str, Any], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(
            "apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=check
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        done = self.plane.kubectl(
            "get", kind, name, "-n", self.namespace, "-o", "json", check=False
        )
        if done.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        body = self.get("agentpipeline", name) or {}
        for item in (body.get("status") or {}).get("conditions") or []:
            if item["type"] == kind:
                return dict(item)
        return None

    def wait_condition(
        self, name: str, kind: str, status: str, reason: str | None = None, timeout: float = 90
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            found = self.condition(name, kind)
            if found and found["status"] == status and reason in (None, found["reason"]):
                return found
            return None

        return wait_for(matches, timeout=timeout, what=f"{kind}={status} {reason or ''}")


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.5)


def admin_call(cluster: Cluster, method: str, *args: Any, **kwargs: Any) -> Any:
    async def call() -> Any:
        async with RocketMQAdmin(name_servers=cluster.rocketmq.namesrv_addr) as admin:
            return await getattr(admin, method)(*args, **kwargs)

    return asyncio.run(call())


def publish(cluster: Cluster, count: int, *, topic: str | None = None) -> None:
    """`count` messages on the request topic (or `topic`), for tasks without a record."""
    topic = topic or cluster.request_topic
    producer = Producer(
        ClientConfiguration(cluster.rocketmq.endpoint, Credentials("", ""), request_timeout=3),
        (topic,),
    )
    producer.startup()
    try:
        pending = []
        for i in range(count):
            message = Message()
            message.topic = topic
            message.body = f'{{"task_id": "no-record-{topic}-{i}"}}'.encode()
            pending.append(producer.send_async(message))
        for future in pending:
            future.result(timeout=30)
    finally:
        producer.shutdown()


def replicas(cluster: Cluster) -> int:
    deployment = cluster.get("deployment", "price-alerts-worker") or {}
    return int(deployment.get("spec", {}).get("replicas", -1))
