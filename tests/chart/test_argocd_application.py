"""deploy/argocd/application.yaml: the chart it points at renders with its values, in waves.

`helm template` (the cached helm of the harness) renders charts/agentprod with the
Application's valuesObject, as Argo CD's repo server would: the chart's strict values schema
accepts them, the CRD comes in wave -1, the operator in 0, the pipelines in 1 and the API in 2
(its readiness needs the pipelines' topics), and each pipeline's spec is one the operator
accepts. The sync policy is the documented one (docs/argocd.md).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentprod_operator import specs
from harness.kubernetes import ensure_binaries

ROOT = Path(__file__).resolve().parents[2]
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(scope="module")
def application() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (ROOT / "deploy" / "argocd" / "application.yaml").read_text()
    )
    return loaded


@pytest.fixture(scope="module")
def rendered(application: dict[str, Any]) -> list[dict[str, Any]]:
    source = application["spec"]["source"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        yaml.safe_dump(source["helm"]["valuesObject"], values)
        values.flush()
        argv = [
            str(ensure_binaries() / "helm"),
            "template",
            source["helm"]["releaseName"],
            str(ROOT / source["path"]),
            f"--namespace={application['spec']['destination']['namespace']}",
            f"--values={values.name}",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def wave(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(WAVE, "0"))


def test_points_at_the_chart(application: dict[str, Any]) -> None:
    assert application["kind"] == "Application"
    assert application["spec"]["source"]["path"] == "charts/agentprod"
    assert (ROOT / "charts" / "agentprod" / "Chart.yaml").is_file()


def test_sync_policy(application: dict[str, Any]) -> None:
    policy = application["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in policy["syncOptions"]
    # nothing the operator writes is in Git, so there is nothing to ignore
    assert "ignoreDifferences" not in application["spec"]
    assert "resources-finalizer.argocd.argoproj.io" in application["metadata"]["finalizers"]


def test_crd_then_operator_then_pipelines_then_api(rendered: list[dict[str, Any]]) -> None:
    def waves(kind: str, name: str | None = None) -> set[int]:
        return {
            wave(obj)
            for obj in rendered
            if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
        }

    (crd,) = waves("CustomResourceDefinition")
    (operator,) = waves("Deployment", "agentprod-operator")
    (pipelines,) = waves("AgentPipeline")
    # last: the API's /readyz needs the topics the operator creates for the pipelines
    (api,) = waves("Deployment", "agentprod-api") | waves("Service", "agentprod-api")
    assert (crd, operator, pipelines, api) == (-1, 0, 1, 2)


def test_pipelines_are_valid_specs(rendered: list[dict[str, Any]]) -> None:
    pipelines = [obj for obj in rendered if obj["kind"] == "AgentPipeline"]
    assert [obj["metadata"]["name"] for obj in pipelines] == ["price-alerts"]
    for obj in pipelines:
        spec = specs.AgentPipelineSpec.model_validate(obj["spec"])
        assert spec.rocketmq.nameServer == "rocketmq-namesrv.mq:9876"
        assert "status" not in obj
