"""The Helm chart against the real kube-apiserver of the session (`control_plane`):

- every scenario (defaults, each `ci/*-values.yaml`) rendered and applied with
  `kubectl apply --dry-run=server`: real admission, defaulting and schema checks, including the
  AgentPipeline CRD's own validation of the rendered pipelines;
- `helm install` adopts the session's CRD and creates the operator and API Deployments and the
  pipelines; `helm upgrade` rolls a new image into all of them and drops a removed pipeline;
  `helm uninstall` removes the workloads and keeps the CRD (`helm.sh/resource-policy: keep`);
- skaffold's `kind` profile: its two releases installed in skaffold's order with the `--set`
  flags it passes, the CRD and the workloads in the first, the pipeline alone in the second.
  (The session's CRD already exists, so this shows that both install, not the fresh-cluster
  failure that splitting them avoids; tests/unit/test_skaffold.py checks that split.)

Pods stay Pending (no kubelet): assertions are on the objects.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.kubernetes import ControlPlane

from tests.chart import skaffold
from tests.chart.charts import CHART, CI_VALUES, Chart

CRD = "agentpipelines.agentprod.io"
# The Prometheus Operator's CRDs are not part of this project: the monitoring scenario is
# dry-run against stand-ins with the same group, version, kinds and scope that accept any spec.
MONITORING_KINDS = {"ServiceMonitor": "servicemonitors", "PodMonitor": "podmonitors"} | {
    "PrometheusRule": "prometheusrules"
}


def _stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def helm(control_plane: ControlPlane) -> Chart:
    return Chart(control_plane.bin_dir / "helm")


@pytest.fixture(scope="module")
def monitoring_crds(control_plane: ControlPlane) -> Iterator[None]:
    crds = [_stand_in_crd(kind, plural) for kind, plural in MONITORING_KINDS.items()]
    stream = yaml.safe_dump_all(crds)
    control_plane.kubectl("apply", "-f", "-", input_text=stream)
    for plural in MONITORING_KINDS.values():
        control_plane.kubectl(
            "wait", "--for=condition=Established", f"crd/{plural}.monitoring.coreos.com"
        )
    yield
    control_plane.kubectl("delete", "-f", "-", "--wait=false", input_text=stream, check=False)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.usefixtures("monitoring_crds")
@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_scenario_passes_server_dry_run(
    control_plane: ControlPlane, helm: Chart, namespace: str, values: Path | None
) -> None:
    manifests = helm.text(files=[values] if values else [], namespace=namespace)
    expected = [doc for doc in yaml.safe_load_all(manifests) if doc]
    done = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input_text=manifests
    )
    applied = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(expected), done.stdout + done.stderr


def _helm(control_plane: ControlPlane, helm: Chart, *args: str) -> str:
    env = os.environ | {"KUBECONFIG": str(control_plane.kubeconfig)}
    return helm.run(*args, env=env)


def _get(control_plane: ControlPlane, namespace: str, *what: str) -> dict[str, Any] | None:
    done = control_plane.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    if done.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _adopt_crd(control_plane: ControlPlane, *, release: str, namespace: str) -> None:
    """The session applied the CRD with kubectl; hand it to the release (docs/install.md)."""
    control_plane.kubectl("label", "--overwrite", "crd", CRD, "app.kubernetes.io/managed-by=Helm")
    control_plane.kubectl(
        "annotate",
        "--overwrite",
        "crd",
        CRD,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={namespace}",
    )


def test_install_upgrade_uninstall(
    control_plane: ControlPlane, helm: Chart, namespace: str
) -> None:
    release = "ap"
    _adopt_crd(control_plane, release=release, namespace=namespace)
    pipelines_values = CHART / "ci" / "pipelines-values.yaml"

    out = _helm(
        control_plane,
        helm,
        "install",
        release,
        str(CHART),
        f"--namespace={namespace}",
        f"--values={pipelines_values}",
    )
    assert "STATUS: deployed" in out
    assert "deployment/ap-agentprod-operator" in out  # NOTES.txt

    operator = _get(control_plane, namespace, "deployment", "ap-agentprod-operator")
    assert operator is not None
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    api = _get(control_plane, namespace, "deployment", "ap-agentprod-api")
    assert api is not None
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/agentprod/agentprod:0.1.0"
    )
    role = _get(control_plane, namespace, "role", "ap-agentprod-operator")
    assert role is not None
    pipeline = _get(control_plane, namespace, "agentpipeline", "price-alerts")
    assert pipeline is not None
    assert pipeline["spec"]["worker"]["image"] == "ghcr.io/agentprod/agentprod:0.1.0"
    assert pipeline["spec"]["scaling"]["pollSeconds"] == 15  # defaulted by the CRD's schema
    assert _get(control_plane, namespace, "agentpipeline", "slow-echo") is not None
    crd = _get(control_plane, namespace, "crd", CRD)
    assert crd is not None
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    only_first = yaml.safe_load(pipelines_values.read_text())["pipelines"][:1]
    _helm(
        control_plane,
        helm,
        "upgrade",
        release,
        str(CHART),
        f"--namespace={namespace}",
        "--reuse-values",
        "--set=image.tag=0.2.0",
        "--set=api.replicaCount=3",
        f"--set-json=pipelines={json.dumps(only_first)}",
    )
    api = _get(control_plane, namespace, "deployment", "ap-agentprod-api")
    assert api is not None
    assert api["spec"]["replicas"] == 3
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/agentprod/agentprod:0.2.0"
    )
    pipeline = _get(control_plane, namespace, "agentpipeline", "price-alerts")
    assert pipeline is not None
    assert pipeline["spec"]["worker"]["image"] == "ghcr.io/agentprod/agentprod:0.2.0"
    removed = _get(control_plane, namespace, "agentpipeline", "slow-echo")
    assert removed is None or removed["metadata"].get("deletionTimestamp")
    history = json.loads(
        _helm(control_plane, helm, "history", release, f"--namespace={namespace}", "-o", "json")
    )
    assert [entry["revision"] for entry in history] == [1, 2]

    _helm(control_plane, helm, "uninstall", release, f"--namespace={namespace}")
    assert _get(control_plane, namespace, "deployment", "ap-agentprod-operator") is None
    assert _get(control_plane, namespace, "deployment", "ap-agentprod-api") is None
    assert _get(control_plane, namespace, "crd", CRD) is not None, "the CRD must be kept"


def _release_of(obj: dict[str, Any] | None) -> str | None:
    assert obj is not None
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations.get("meta.helm.sh/release-name")


def test_skaffold_kind_releases_install_in_order(
    control_plane: ControlPlane, helm: Chart, namespace: str
) -> None:
    kind = skaffold.with_profile(skaffold.load(), "kind")
    main, pipelines = skaffold.install_order(kind)
    _adopt_crd(control_plane, release=main, namespace=namespace)
    for name in (main, pipelines):
        flags = skaffold.set_flags(skaffold.release(kind, name))
        out = _helm(
            control_plane, helm, "install", name, str(CHART), f"--namespace={namespace}", *flags
        )
        assert "STATUS: deployed" in out

    for deployment in ("operator", "api", "redis", "rocketmq"):
        found = _get(control_plane, namespace, "deployment", f"agentprod-{deployment}")
        assert _release_of(found) == main
    assert _release_of(_get(control_plane, namespace, "crd", CRD)) == main
    pipeline = _get(control_plane, namespace, "agentpipeline", "price-alerts")
    assert _release_of(pipeline) == pipelines
    assert pipeline is not None
    assert pipeline["spec"]["worker"]["image"] == "registry.test/agentprod:3f2c9a1"
    assert pipeline["spec"]["redis"]["url"].startswith("redis://agentprod-redis.")
    manifest = _helm(control_plane, helm, "get", "manifest", pipelines, f"--namespace={namespace}")
    assert [doc["kind"] for doc in yaml.safe_load_all(manifest) if doc] == ["AgentPipeline"]

    # `skaffold delete` order: the pipelines' release first, then the one with the operator
    for item in skaffold.releases(kind):
        _helm(control_plane, helm, "uninstall", item["name"], f"--namespace={namespace}")
    gone = _get(control_plane, namespace, "agentpipeline", "price-alerts")
    assert gone is None or gone["metadata"].get("deletionTimestamp")
    assert _get(control_plane, namespace, "deployment", "agentprod-operator") is None
    assert _get(control_plane, namespace, "crd", CRD) is not None, "the CRD must be kept"
