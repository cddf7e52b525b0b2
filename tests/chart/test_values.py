"""Values are checked before anything renders: `helm lint --strict` on every scenario, the
strict schema refusing bad values with a message naming the key, and the values reference of
docs/install.md in step with the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import values_reference
from tests.chart.charts import CHART, CI_VALUES, ROOT, Chart


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_lint_strict(chart: Chart, values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + ([f"--values={values}"] if values else [])
    assert "1 chart(s) linted, 0 chart(s) failed" in chart.run(*args)


def test_ci_scenarios_exist() -> None:
    names = {path.name for path in CI_VALUES}
    assert {"dev-values.yaml", "production-values.yaml", "pipelines-values.yaml"} <= names


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"image": {"pullPolicy": "Sometimes"}},
            "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ({"api": {"replicas": 3}}, "at '/api': additional properties 'replicas' not allowed"),
        (
            {"operator": {"enabld": False}},
            "at '/operator': additional properties 'enabld' not allowed",
        ),
        ({"api": {"replicaCount": -1}}, "at '/api/replicaCount': minimum: got -1, want 0"),
        ({"crds": {"install": "yes"}}, "at '/crds/install': got string, want boolean"),
        ({"redis": {"url": "localhost:6379"}}, "at '/redis/url'"),
        ({"pipelines": [{"spec": {}}]}, "at '/pipelines/0': missing property 'name'"),
        (
            {"pipelines": [{"name": "Bad_Name", "spec": {"topics": {}, "consumerGroup": {}}}]},
            "at '/pipelines/0/name'",
        ),
        (
            {
                "pipelines": [
                    {"name": "p", "spec": {"topics": {}, "consumerGroup": {}, "scalin": {}}}
                ]
            },
            "at '/pipelines/0/spec': additional properties 'scalin' not allowed",
        ),
        ({"operator": {"watchNamespaces": ["a", "a"]}}, "at '/operator/watchNamespaces'"),
    ],
    ids=lambda value: json.dumps(value)[:40] if isinstance(value, dict) else "",
)
def test_schema_rejects_bad_values(chart: Chart, values: dict[str, Any], message: str) -> None:
    error = chart.error(values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


def test_values_yaml_defaults_are_complete() -> None:
    """Every documented key has a description, and every default in values.yaml a schema entry."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    keys = values_reference.leaves(schema)
    undocumented = [key for key, node in keys if not node.get("description")]
    assert not undocumented, f"schema keys without a description: {undocumented}"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {key for key, _ in keys}

    def walk(node: Any, prefix: str) -> list[str]:
        if isinstance(node, dict) and node and prefix not in free_form:
            return [k for name, child in node.items() for k in walk(child, f"{prefix}{name}.")]
        return [prefix.rstrip(".")]

    free_form = {f"{key}." for key, node in keys if node.get("type") == "object"}
    assert set(walk(values, "")) <= documented


def test_values_reference_in_docs_is_current() -> None:
    assert values_reference.current() == values_reference.section(), (
        "docs/install.md's values reference is stale: run `python -m tests.chart.values_reference`"
    )


def test_readme_links_the_install_guide() -> None:
    assert "docs/install.md" in (ROOT / "README.md").read_text()
