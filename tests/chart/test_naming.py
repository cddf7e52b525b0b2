"""Names and labels: names follow the release, stay strings where YAML 1.1 reads booleans,
and selectors hold only immutable labels."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.chart.charts import (
    EVERYTHING_ON,
    PIPELINE,
    SCENARIOS,
    Chart,
    one,
    scenario_objects,
)


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
    for obj in scenario_objects(chart, scenario):
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "agentprod", obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert set(selector) <= immutable, selector
            template = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= template.items()
