"""The API's objects: Deployment wiring, CPU autoscaling, Ingress."""

from __future__ import annotations

from tests.chart.charts import (
    Chart,
    env_of,
    one,
)


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
        "HOME": "/tmp",  # on the /tmp emptyDir: the RocketMQ client writes ~/logs at import
        "API_HOST": "0.0.0.0",
        "API_PORT": "8000",
        "LOG_LEVEL": "INFO",
        "MQ_TOPIC_REQUEST": "TopicTest",
        "MQ_TOPIC_RESULT": "TopicResult",
        "API_AUTH": "required",
        "API_RATE_LIMIT": "600/minute",
        "API_MAX_QUEUED_TASKS": "10000",
        "API_DOCS": "protected",
        "API_METRICS": "protected",
        "REDIS_URL": "redis://redis:6379/0",
        "MQ_ENDPOINT": "rocketmq-proxy:8081",
        "MQ_NAMESRV": "rocketmq-namesrv:9876",
        "LOG_FORMAT": "json",  # OTEL_* only with observability.tracing (test_observability.py)
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
