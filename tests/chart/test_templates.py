"""What charts/agentprod renders, rule by rule: naming and labels, secure defaults, the CRD copy,
the operator's RBAC and watch scope, the API's scaling objects, pipelines from values, the dev
services, and alerts and dashboard that only use metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.charts import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    ROOT,
    Chart,
    env_of,
    find,
    one,
    pod_specs,
)

APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
CRD_NAME = "agentpipelines.agentprod.io"
PIPELINE = {
    "name": "price-alerts",
    "spec": {
        "topics": {"request": {"name": "TopicTest"}, "result": {"name": "TopicResult"}},
        "consumerGroup": {"name": "GID_AGENT_PYTHON"},
    },
}
EVERYTHING_ON: dict[str, Any] = {
    "redis": {"dev": {"enabled": True}},
    "rocketmq": {"dev": {"enabled": True}},
    "networkPolicy": {"enabled": True},
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    "api": {
        "ingress": {"enabled": True},
        "autoscaling": {"enabled": True},
        "resources": {"requests": {"cpu": "100m"}},
    },
    "pipelines": [PIPELINE],
}
SCENARIOS = [pytest.param(None, id="defaults"), pytest.param("everything", id="everything")] + [
    pytest.param(path, id=path.name) for path in CI_VALUES
]


def _scenario(chart: Chart, scenario: Path | str | None) -> list[dict[str, Any]]:
    if scenario is None:
        return chart.render()
    if scenario == "everything":
        return chart.render(EVERYTHING_ON)
    assert isinstance(scenario, Path)
    return chart.render(files=[scenario])


# ---- naming and labels


def test_names_follow_the_release(chart: Chart) -> None:
    objects = chart.render(release="shop")
    assert one(objects, "Deployment", "shop-agentprod-operator")
    assert one(objects, "Deployment", "shop-agentprod-api")
    # A release name that already holds the chart name is used alone.
    assert one(chart.render(release="agentprod-prod"), "Deployment", "agentprod-prod-api")
    long_release = "a" * 53
    names = [obj["metadata"]["name"] for obj in chart.render(release=long_release)]
    assert all(len(name) <= 63 for name in names), names


def test_names_that_yaml_reads_as_booleans_stay_strings(chart: Chart) -> None:
    """A release `y` or a namespace `on` must not become `true` (Kubernetes' YAML 1.1 parser
    reads y/n/on/off as booleans and refuses the object)."""
    text = chart.text(
        EVERYTHING_ON | {"pipelines": [PIPELINE | {"name": "on"}]}, release="y", namespace="on"
    )
    # PyYAML knows on/off but not y/n as booleans: parse with y/n made explicit.
    objects = [doc for doc in yaml.safe_load_all(re.sub(r": y$", ": yes", text, flags=re.M)) if doc]
    for obj in objects:
        metadata = obj["metadata"]
        assert metadata.get("namespace", "on") == "on", metadata
        assert isinstance(metadata["name"], str), metadata
        assert all(isinstance(value, str) for value in metadata.get("labels", {}).values())
    assert not re.search(r"^\s*(app.kubernetes.io/instance|namespace): y$", text, flags=re.M)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_selectors_hold_only_immutable_labels(chart: Chart, scenario: Any) -> None:
    immutable = {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    }
    for obj in _scenario(chart, scenario):
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "agentprod", obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert set(selector) <= immutable, selector
            template = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= template.items()


# ---- secure defaults


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_locked_down(chart: Chart, scenario: Any) -> None:
    pods = pod_specs(_scenario(chart, scenario))
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            assert "resources" not in container or container["resources"], name


def test_optional_objects_are_off_by_default(chart: Chart) -> None:
    kinds = {obj["kind"] for obj in chart.render()}
    assert kinds == {
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    }
    deployments = {obj["metadata"]["name"] for obj in find(chart.render(), "Deployment")}
    assert deployments == {"r-agentprod-operator", "r-agentprod-api"}


# ---- the CRD


def test_crd_template_is_the_repository_crd(chart: Chart) -> None:
    copy = CHART / "files" / f"{CRD_NAME}.yaml"
    source = ROOT / "crds" / f"{CRD_NAME}.yaml"
    assert copy.read_text() == source.read_text(), (
        f"the chart's CRD is stale: cp {source.relative_to(ROOT)} {copy.relative_to(ROOT)}"
    )
    rendered = one(chart.render(), "CustomResourceDefinition", CRD_NAME)
    annotations = rendered["metadata"].pop("annotations")
    labels = rendered["metadata"].pop("labels")
    assert rendered == yaml.safe_load(source.read_text())
    assert annotations == {
        "argocd.argoproj.io/sync-wave": "-1",
        "helm.sh/resource-policy": "keep",
    }
    assert labels["app.kubernetes.io/instance"] == "r"


def test_crd_switches(chart: Chart) -> None:
    assert not find(chart.render({"crds": {"install": False}}), "CustomResourceDefinition")
    unkept = one(chart.render({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert unkept["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-1"}


# ---- the operator


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


# ---- the API


def test_api_deployment_wiring(chart: Chart) -> None:
    objects = chart.render({"image": {"tag": "1.2.3"}})
    deployment = one(objects, "Deployment", "r-agentprod-api")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/agentprod/agentprod:1.2.3"
    assert container["args"] == ["api"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert env_of(container) == {
        "API_HOST": "0.0.0.0",
        "API_PORT": "8000",
        "LOG_LEVEL": "INFO",
        "MQ_TOPIC_REQUEST": "TopicTest",
        "MQ_TOPIC_RESULT": "TopicResult",
        "REDIS_URL": "redis://redis:6379/0",
        "MQ_ENDPOINT": "rocketmq-proxy:8081",
        "MQ_NAMESRV": "rocketmq-namesrv:9876",
    }
    service = one(objects, "Service", "r-agentprod-api")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
    }


def test_api_autoscaling_on_cpu(chart: Chart) -> None:
    objects = chart.render(
        {
            "api": {
                "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 7},
                "resources": {"requests": {"cpu": "250m"}},
            }
        }
    )
    assert "replicas" not in one(objects, "Deployment", "r-agentprod-api")["spec"]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "r-agentprod-api"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 7)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    message = chart.error({"api": {"autoscaling": {"enabled": True}}})
    assert "api.autoscaling.enabled needs api.resources.requests.cpu" in message


def test_api_ingress(chart: Chart) -> None:
    ingress = one(
        chart.render(
            {
                "api": {
                    "ingress": {
                        "enabled": True,
                        "className": "nginx",
                        "hosts": [
                            {
                                "host": "tasks.example.com",
                                "paths": [{"path": "/", "pathType": "Prefix"}],
                            }
                        ],
                        "tls": [{"hosts": ["tasks.example.com"], "secretName": "tasks-tls"}],
                    }
                }
            }
        ),
        "Ingress",
    )
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "tasks.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "r-agentprod-api",
        "port": {"name": "http"},
    }


# ---- connections and pipelines


def test_pipelines_are_filled_from_values(chart: Chart) -> None:
    custom = {
        "name": "custom",
        "namespace": "team-a",
        "spec": PIPELINE["spec"]
        | {
            "redis": {"secretRef": {"name": "redis", "key": "url"}},
            "worker": {"image": "example.com/agents:2", "concurrency": 2},
            "rocketmq": {"cluster": "Other"},
        },
    }
    objects = chart.render(
        {
            "image": {"tag": "9.9.9", "pullPolicy": "Always"},
            "redis": {"url": "redis://cache:6379/2"},
            "rocketmq": {"endpoints": "proxy:8081", "nameServer": "ns1:9876;ns2:9876"},
            "pipelines": [PIPELINE, custom],
        }
    )
    plain = one(objects, "AgentPipeline", "price-alerts")
    assert plain["metadata"]["namespace"] == NAMESPACE
    assert plain["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "1"}
    assert plain["spec"]["rocketmq"] == {
        "endpoint": "proxy:8081",
        "nameServer": "ns1:9876;ns2:9876",
        "cluster": "DefaultCluster",
    }
    assert plain["spec"]["redis"] == {"url": "redis://cache:6379/2"}
    assert plain["spec"]["worker"] == {
        "image": "ghcr.io/agentprod/agentprod:9.9.9",
        "imagePullPolicy": "Always",
    }
    assert plain["spec"]["topics"] == PIPELINE["spec"]["topics"]
    overridden = one(objects, "AgentPipeline", "custom")
    assert overridden["metadata"]["namespace"] == "team-a"
    # A spec's own redis block is taken whole; other blocks are merged key by key.
    assert overridden["spec"]["redis"] == {"secretRef": {"name": "redis", "key": "url"}}
    assert overridden["spec"]["rocketmq"]["cluster"] == "Other"
    assert overridden["spec"]["rocketmq"]["endpoint"] == "proxy:8081"
    assert overridden["spec"]["worker"] == {
        "image": "example.com/agents:2",
        "imagePullPolicy": "Always",
        "concurrency": 2,
    }


def test_image_tag_defaults_to_app_version(chart: Chart) -> None:
    pipeline = one(chart.render({"pipelines": [PIPELINE]}), "AgentPipeline")
    assert pipeline["spec"]["worker"]["image"] == f"ghcr.io/agentprod/agentprod:{APP_VERSION}"


def test_dev_services_become_the_default_connections(chart: Chart) -> None:
    objects = chart.render(
        {
            "redis": {"dev": {"enabled": True}},
            "rocketmq": {"dev": {"enabled": True}},
            "pipelines": [PIPELINE],
        }
    )
    redis = f"redis://r-agentprod-redis.{NAMESPACE}.svc:6379/0"
    proxy = f"r-agentprod-rocketmq.{NAMESPACE}.svc:8081"
    namesrv = f"r-agentprod-rocketmq.{NAMESPACE}.svc:9876"
    api = env_of(
        one(objects, "Deployment", "r-agentprod-api")["spec"]["template"]["spec"]["containers"][0]
    )
    assert (api["REDIS_URL"], api["MQ_ENDPOINT"], api["MQ_NAMESRV"]) == (redis, proxy, namesrv)
    spec = one(objects, "AgentPipeline")["spec"]
    assert spec["redis"] == {"url": redis}
    assert (spec["rocketmq"]["endpoint"], spec["rocketmq"]["nameServer"]) == (proxy, namesrv)
    ports = {
        p["name"]: p["port"]
        for p in one(objects, "Service", "r-agentprod-rocketmq")["spec"]["ports"]
    }
    assert ports == {"namesrv": 9876, "broker": 10911, "proxy": 8081}
    assert one(objects, "Service", "r-agentprod-redis")["spec"]["ports"][0]["port"] == 6379
    # Explicit values still win over the dev services.
    explicit = chart.render(
        {"redis": {"dev": {"enabled": True}, "url": "redis://elsewhere:6379/0"}}
    )
    api = env_of(
        one(explicit, "Deployment", "r-agentprod-api")["spec"]["template"]["spec"]["containers"][0]
    )
    assert api["REDIS_URL"] == "redis://elsewhere:6379/0"


def test_secrets_instead_of_plain_values(chart: Chart) -> None:
    objects = chart.render(
        {
            "redis": {"existingSecret": {"name": "redis-conn", "key": "dsn"}},
            "rocketmq": {"credentialsSecret": "mq-acl"},
            "pipelines": [PIPELINE],
        }
    )
    api = env_of(
        one(objects, "Deployment", "r-agentprod-api")["spec"]["template"]["spec"]["containers"][0]
    )
    assert api["REDIS_URL"] == {"secretKeyRef": {"name": "redis-conn", "key": "dsn"}}
    assert api["MQ_ACCESS_KEY"] == {"secretKeyRef": {"name": "mq-acl", "key": "accessKey"}}
    assert api["MQ_SECRET_KEY"] == {"secretKeyRef": {"name": "mq-acl", "key": "secretKey"}}
    spec = one(objects, "AgentPipeline")["spec"]
    assert spec["redis"] == {"secretRef": {"name": "redis-conn", "key": "dsn"}}
    assert spec["rocketmq"]["credentialsSecret"] == "mq-acl"


def test_components_can_be_left_out(chart: Chart) -> None:
    """A pipelines-only release: no operator, no API, no CRD."""
    objects = chart.render(
        {
            "crds": {"install": False},
            "operator": {"enabled": False},
            "api": {"enabled": False},
            "pipelines": [PIPELINE],
        }
    )
    assert [obj["kind"] for obj in objects] == ["AgentPipeline"]


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


# ---- monitoring


def _exported_series() -> set[str]:
    """Every series name the API, the worker and the operator export."""
    from agentprod import metrics as app_metrics
    from agentprod_operator.scaling import metrics as operator_metrics
    from prometheus_client.metrics import MetricWrapperBase

    suffixes = {
        "counter": ["_total"],
        "gauge": [""],
        "stateset": [""],  # prometheus_client's Enum
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["", "_sum", "_count"],
    }
    names: set[str] = set()
    for module in (app_metrics, operator_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                kind = value._type
                names |= {value._name + suffix for suffix in suffixes[kind]}
    return names


def test_alerts_and_dashboard_use_exported_metrics(chart: Chart) -> None:
    objects = chart.render(
        {"metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}}
    )
    rules = one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == {
        "AgentprodResponseTimeHigh",
        "AgentprodTaskRunTimeHigh",
        "AgentprodErrorRateHigh",
        "AgentprodSubmissionsRefused",
        "AgentprodLagGrowing",
        "AgentprodTasksGivenUp",
        "AgentprodDeadLetters",
    }
    dashboard = json.loads(one(objects, "ConfigMap")["data"]["agentprod.json"])
    expressions = [rule["expr"] for rule in rules] + [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]
    used = {name for expr in expressions for name in re.findall(r"\bagentprod_\w+", expr)}
    exported = _exported_series()
    assert used
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_monitors_select_the_metrics_ports(chart: Chart) -> None:
    objects = chart.render(
        {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    )
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(objects, "ServiceMonitor")}
    assert monitors["r-agentprod-api"]["endpoints"][0]["port"] == "http"
    assert monitors["r-agentprod-operator"]["endpoints"][0]["port"] == "metrics"
    for name, spec in monitors.items():
        service = one(objects, "Service", name)
        assert spec["selector"]["matchLabels"] == service["spec"]["selector"]
    pods = one(objects, "PodMonitor")["spec"]
    # The worker Deployments the operator creates (agentprod_operator/workloads.py).
    assert pods["selector"]["matchLabels"]["app.kubernetes.io/name"] == "agentprod-worker"
    assert pods["podMetricsEndpoints"][0]["port"] == "health"
    assert pods["namespaceSelector"] == {"matchNames": [NAMESPACE]}
