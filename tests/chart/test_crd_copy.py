"""The chart's CRD is the repository's, behind crds.install / crds.keep."""

from __future__ import annotations

import yaml

from tests.chart.charts import (
    CHART,
    CRD_NAME,
    ROOT,
    Chart,
    find,
    one,
)


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
