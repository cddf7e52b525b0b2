"""Argo CD sync waves of charts/agentprod (docs/argocd.md): the CRD (-1), then the operator and
the dev services (0), then the pipelines (1), and the API last (2). Argo CD starts a wave only
once the previous one is healthy, and the API's /readyz needs the RocketMQ topics that the
operator creates for the pipelines: in an earlier wave the API would never become ready and the
sync would stall."""

from __future__ import annotations

from typing import Any

from tests.chart.charts import Chart, find, one

WAVE = "argocd.argoproj.io/sync-wave"
ALL_ON: dict[str, Any] = {
    "redis": {"dev": {"enabled": True}},
    "rocketmq": {"dev": {"enabled": True}},
    "api": {
        "ingress": {"enabled": True},
        "autoscaling": {"enabled": True},
        "resources": {"requests": {"cpu": "100m"}},
    },
    "pipelines": [
        {
            "name": "price-alerts",
            "spec": {
                "topics": {"request": {"name": "TopicTest"}, "result": {"name": "TopicResult"}},
                "consumerGroup": {"name": "GID_AGENT_PYTHON"},
            },
        }
    ],
}
API_KINDS = ["Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"]


def wave(obj: dict[str, Any]) -> int:
    """Argo CD's wave of an object: the annotation, 0 without it."""
    return int((obj["metadata"].get("annotations") or {}).get(WAVE, "0"))


def component(obj: dict[str, Any]) -> str | None:
    labels: dict[str, str] = obj["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/component")


def test_crd_then_operator_then_pipelines_then_api(chart: Chart) -> None:
    objects = chart.render(ALL_ON)
    crd = wave(one(objects, "CustomResourceDefinition"))
    operator = wave(one(objects, "Deployment", "r-agentprod-operator"))
    (pipelines,) = {wave(obj) for obj in find(objects, "AgentPipeline")}
    api = wave(one(objects, "Deployment", "r-agentprod-api"))
    assert crd < operator < pipelines < api
    assert (crd, operator, pipelines, api) == (-1, 0, 1, 2)


def test_every_api_object_is_in_the_last_wave(chart: Chart) -> None:
    objects = chart.render(ALL_ON)
    api = [obj for obj in objects if component(obj) == "api" and obj["kind"] in API_KINDS]
    assert sorted(obj["kind"] for obj in api) == sorted(API_KINDS)
    assert {wave(obj) for obj in api} == {2}
    # everything else, the dev Redis and RocketMQ included, is applied before the API
    others = [obj for obj in objects if obj not in api]
    assert max(wave(obj) for obj in others) < 2
    assert {wave(obj) for obj in objects if component(obj) in ("redis", "rocketmq")} == {0}


def test_api_wave_keeps_the_annotations_from_values(chart: Chart) -> None:
    objects = chart.render(
        {
            "api": {
                "service": {"annotations": {"example.com/team": "tasks"}},
                # a wave given in values wins over the chart's
                "ingress": {"enabled": True, "annotations": {WAVE: "5"}},
            }
        }
    )
    service = one(objects, "Service", "r-agentprod-api")
    assert service["metadata"]["annotations"] == {"example.com/team": "tasks", WAVE: "2"}
    assert one(objects, "Ingress")["metadata"]["annotations"] == {WAVE: "5"}
