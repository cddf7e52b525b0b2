"""NetworkPolicies: who may reach the API, the workers and the dev services."""

from __future__ import annotations

from tests.chart.charts import (
    Chart,
    find,
)


def test_network_policies(chart: Chart) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"name": "ingress"}}}
    objects = chart.render(
        {
            "networkPolicy": {"enabled": True, "apiFrom": [peer]},
            "redis": {"dev": {"enabled": True}},
        }
    )
    policies = {obj["metadata"]["name"]: obj["spec"] for obj in find(objects, "NetworkPolicy")}
    assert set(policies) == {
        "r-agentprod-api",
        "r-agentprod-operator",
        "r-agentprod-workers",
        "r-agentprod-redis",
    }
    assert all(policy["policyTypes"] == ["Ingress"] for policy in policies.values())
    assert policies["r-agentprod-api"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": [peer]}
    ]
    assert policies["r-agentprod-redis"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "agentprod"}}}]}
    ]
    assert policies["r-agentprod-workers"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "agentprod-worker"}
    }
