"""`kube.covers`: a live Deployment template still holds what the operator set (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from agentprod_operator import kube
from agentprod_operator.reconcile import workloads
from agentprod_operator.specs import AgentPipelineSpec

SPEC = AgentPipelineSpec.model_validate(
    {
        "rocketmq": {"nameServer": "ns:9876", "endpoint": "proxy:8081"},
        "topics": {"request": {"name": "T"}, "result": {"name": "R"}},
        "consumerGroup": {"name": "G"},
        "redis": {"url": "redis://r:6379/0"},
        "worker": {"image": "agentprod:1"},
    }
)


def template() -> dict[str, Any]:
    deployment = workloads.desired_deployment(pipeline="p", namespace="n", spec=SPEC, replicas=1)
    result: dict[str, Any] = deployment["spec"]["template"]
    return result


def defaulted() -> dict[str, Any]:
    """What the API server stores: ours plus its defaults."""
    live = template()
    live["spec"]["dnsPolicy"] = "ClusterFirst"
    live["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    return live


def test_defaults_are_not_drift() -> None:
    assert kube.covers(defaulted(), template())


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t["spec"]["containers"][0].__setitem__("image", "agentprod:evil"),
        lambda t: t["spec"]["containers"][0]["env"].pop(),
        lambda t: t["spec"]["containers"][0].pop("readinessProbe"),
        lambda t: t["spec"].__setitem__("containers", t["spec"]["containers"] * 2),
        lambda t: t["metadata"]["labels"].__setitem__("app.kubernetes.io/name", "other"),
    ],
    ids=["set-image", "env-removed", "probe-removed", "container-added", "label-changed"],
)
def test_edits_are_drift(edit: Any) -> None:
    live = defaulted()
    edit(live)
    assert not kube.covers(live, template())
