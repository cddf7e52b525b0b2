"""The operator's objects: one replica recreated, the reviewed least-privilege RBAC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.chart.charts import (
    APP_VERSION,
    NAMESPACE,
    ROOT,
    Chart,
    env_of,
    find,
    one,
)


def test_operator_is_one_replica_recreated(chart: Chart) -> None:
    deployment = one(chart.render(), "Deployment", "r-agentprod-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "r-agentprod-operator"
    container = pod["containers"][0]
    assert container["image"] == f"ghcr.io/agentprod/agentprod-operator:{APP_VERSION}"
    assert container["args"] == [
        f"--namespace={NAMESPACE}",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert env_of(container)["AGENTPROD_OPERATOR_METRICS_PORT"] == "9090"
    service = one(chart.render(), "Service", "r-agentprod-operator")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]


def _rules_of(path: Path, kind: str) -> list[dict[str, Any]]:
    return next(doc for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == kind)["rules"]


def test_operator_rbac_is_the_reviewed_least_privilege(chart: Chart) -> None:
    """The chart grants exactly the rules of deploy/operator/rbac*.yaml, never a wildcard."""
    namespaced = chart.render({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    roles = find(namespaced, "Role")
    assert {role["metadata"]["namespace"] for role in roles} == {"team-a", "team-b"}
    for role in roles:
        assert role["rules"] == _rules_of(ROOT / "deploy/operator/rbac.yaml", "Role")
    bindings = find(namespaced, "RoleBinding")
    assert {b["subjects"][0]["namespace"] for b in bindings} == {NAMESPACE}
    observer = one(namespaced, "ClusterRole")
    assert observer["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
    args = one(namespaced, "Deployment", "r-agentprod-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[:2] == ["--namespace=team-a", "--namespace=team-b"]

    clusterwide = chart.render({"operator": {"watchAllNamespaces": True}})
    assert not find(clusterwide, "Role")
    role = one(clusterwide, "ClusterRole")
    assert role["rules"] == _rules_of(ROOT / "deploy/operator/rbac-clusterwide.yaml", "ClusterRole")
    binding = one(clusterwide, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "r-agentprod-operator", "namespace": NAMESPACE}
    ]
    for obj in [*namespaced, *clusterwide]:
        for rule in obj.get("rules", []):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
