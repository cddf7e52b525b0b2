"""Two status writers on a real kube-apiserver: neither overwrites the other's conditions.

The reconcile handler owns Ready, TopicsReady, ConsumerGroupReady and WorkersReady; the scaling
daemon owns ScalingActive. Each server-side applies only its own (the CRD makes
`status.conditions` a map list keyed by type), so a writer holding a stale copy of the other's
condition cannot put it back. Cases: each writer's apply keeps the other's entry; a changed
entry replaces only itself; a merge patch of other status fields (kopf's patch, the daemon's
lag) leaves the conditions alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentprod_operator import conditions, kube
from harness.kubernetes import ControlPlane

PIPELINE = """
apiVersion: agentprod.io/v1alpha1
kind: AgentPipeline
metadata: {name: writers, namespace: default}
spec:
  rocketmq: {nameServer: "127.0.0.1:9876", endpoint: "127.0.0.1:8081"}
  topics: {request: {name: TopicW}, result: {name: TopicWR}}
  consumerGroup: {name: GID_W}
  redis: {url: "redis://127.0.0.1:6379/0"}
  worker: {image: "agentprod:dev"}
"""


def condition(kind: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": reason,
        "observedGeneration": 1,
        "lastTransitionTime": "2026-12-01T10:00:00Z",
    }


def test_each_writer_keeps_the_others_conditions(api_server: ControlPlane) -> None:
    api_server.kubectl("apply", "-f", "-", input_text=PIPELINE)

    async def scenario() -> list[dict[str, Any]]:
        client = kube.Kube(await kube.connect(kubeconfig=str(api_server.kubeconfig)))
        try:
            apply = client.apply_pipeline_conditions
            where = {"namespace": "default", "name": "writers"}
            reconciled = [
                condition(conditions.READY, "True", "Reconciled"),
                condition(conditions.TOPICS_READY, "True", "TopicsReconciled"),
            ]
            await apply(**where, conditions=reconciled, manager=conditions.RECONCILE_MANAGER)
            scaling = [condition(conditions.SCALING_ACTIVE, "True", "Target")]
            await apply(**where, conditions=scaling, manager=conditions.SCALING_MANAGER)
            # The reconcile handler writes again with a changed Ready; its stale view held no
            # ScalingActive at all, and it must still be there afterwards.
            reconciled[0] = condition(conditions.READY, "False", "RocketMQUnavailable")
            await apply(**where, conditions=reconciled, manager=conditions.RECONCILE_MANAGER)
            scaling = [condition(conditions.SCALING_ACTIVE, "False", "NoData")]
            await apply(**where, conditions=scaling, manager=conditions.SCALING_MANAGER)
            await client.patch_pipeline_status(**where, status={"lag": 7, "replicas": 1})
            body = await client._custom.get_namespaced_custom_object_status(
                "agentprod.io", "v1alpha1", "default", "agentpipelines", "writers"
            )
        finally:
            await client.close()
        assert body["status"]["lag"] == 7
        found: list[dict[str, Any]] = body["status"]["conditions"]
        return found

    found = asyncio.run(scenario())
    by_type = {item["type"]: (item["status"], item["reason"]) for item in found}
    assert by_type == {
        conditions.READY: ("False", "RocketMQUnavailable"),
        conditions.TOPICS_READY: ("True", "TopicsReconciled"),
        conditions.SCALING_ACTIVE: ("False", "NoData"),
    }
