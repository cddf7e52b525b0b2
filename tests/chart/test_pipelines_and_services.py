"""Pipelines from values, the image tag, the dev services as default connections, secrets
instead of plain values, optional objects and components."""

from __future__ import annotations

from tests.chart.charts import (
    APP_VERSION,
    NAMESPACE,
    PIPELINE,
    Chart,
    env_of,
    find,
    one,
)


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
    log_format = [{"name": "LOG_FORMAT", "value": "json"}]  # observability.* (no tracing)
    assert plain["spec"]["worker"] == {
        "image": "ghcr.io/agentprod/agentprod:9.9.9",
        "imagePullPolicy": "Always",
        "env": log_format,
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
        "env": log_format,
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
    (redis_container,) = one(objects, "Deployment", "r-agentprod-redis")["spec"]["template"][
        "spec"
    ]["containers"]
    args = redis_container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"  # records survive a restart
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
