"""`helm template` / `helm lint` over charts/agentprod, shared by tests/chart and tests/e2e.

Rendering needs no cluster: helm is the cached build of the control-plane harness
(`hack/build-control-plane.sh`), version-stamped so its default Kubernetes version is 1.34.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "agentprod"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "r"
NAMESPACE = "agentprod"


class HelmError(RuntimeError):
    """helm exited non-zero; the message is its stderr."""


class Chart:
    def __init__(self, helm: Path) -> None:
        self.helm = helm

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [str(self.helm), *args], capture_output=True, text=True, check=False, env=env
        )
        if done.returncode != 0:
            raise HelmError(done.stderr.strip() or done.stdout.strip())
        return done.stdout

    def text(
        self,
        values: dict[str, Any] | None = None,
        *,
        files: Iterable[Path] = (),
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> str:
        """The rendered manifests as one YAML stream."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
            yaml.safe_dump(values or {}, extra)
            extra.flush()
            args = [f"--values={path}" for path in [*files, Path(extra.name)]]
            return self.run("template", release, str(CHART), f"--namespace={namespace}", *args)

    def render(self, values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """The rendered objects (empty documents dropped)."""
        return [doc for doc in yaml.safe_load_all(self.text(values, **kwargs)) if doc]

    def error(self, values: dict[str, Any]) -> str:
        """helm's message for values that must not render."""
        try:
            self.text(values)
        except HelmError as error:
            return str(error)
        raise AssertionError(f"rendered although it should not: {values}")


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (obj["metadata"]["name"], obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# ---- scenarios shared by the template tests

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


def scenario_objects(chart: Chart, scenario: Path | str | None) -> list[dict[str, Any]]:
    """What a scenario of SCENARIOS renders: defaults, everything on, or a ci/ values file."""
    if scenario is None:
        return chart.render()
    if scenario == "everything":
        return chart.render(EVERYTHING_ON)
    assert isinstance(scenario, Path)
    return chart.render(files=[scenario])
