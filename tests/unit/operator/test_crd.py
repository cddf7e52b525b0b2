"""The committed CRD is exactly the generator's output, and its schema carries the rules."""

from pathlib import Path

import yaml
from agentprod_operator import crds, specs
from agentprod_operator.cli import main

CRD_FILE = Path(__file__).parents[3] / "crds" / "agentpipelines.agentprod.io.yaml"


def test_committed_crd_matches_the_generator() -> None:
    assert CRD_FILE.read_text() == crds.render_crd(), (
        "crds/ is stale: run `agentprod-operator crd > crds/agentpipelines.agentprod.io.yaml`"
    )


def test_cli_prints_the_crd(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["crd"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == crds.build_crd()


def test_schema_is_structural_with_rules_and_columns() -> None:
    version = crds.build_crd()["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["required"]) == {"rocketmq", "topics", "consumerGroup", "redis", "worker"}
    scaling = spec["properties"]["scaling"]
    assert scaling["x-kubernetes-validations"][0]["rule"] == "self.minReplicas <= self.maxReplicas"
    queues = spec["properties"]["topics"]["properties"]["request"]["properties"]["queues"]
    assert (queues["minimum"], queues["default"]) == (1, 8)
    assert spec["properties"]["agent"]["properties"]["config"][
        "x-kubernetes-preserve-unknown-fields"
    ]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Lag",
        "Replicas",
        "Desired",
        "Ready",
        "Age",
    ]

    def refs(node: object) -> bool:
        if isinstance(node, dict):
            if node.get("x-kubernetes-int-or-string"):  # the one anyOf a structural schema has
                return node["anyOf"] != [{"type": "integer"}, {"type": "string"}]
            return "$ref" in node or "anyOf" in node or any(refs(v) for v in node.values())
        if isinstance(node, list):
            return any(refs(v) for v in node)
        return False

    assert not refs(spec)


def _free_form(node: object, path: str = "spec") -> list[str]:
    if isinstance(node, dict):
        found = [path] if node.get("x-kubernetes-preserve-unknown-fields") else []
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found += _free_form(child, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += _free_form(node[key], f"{path}[]")
        return found
    return []


def test_only_the_agents_own_config_keeps_unknown_fields() -> None:
    """Every other object declares its fields: an unknown one is pruned, or refused under
    strict field validation (kubectl's default)."""
    version = crds.build_crd()["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _free_form(spec) == ["spec.agent.config"]
    worker = spec["properties"]["worker"]["properties"]
    cpu = worker["resources"]["properties"]["requests"]["additionalProperties"]
    assert cpu["x-kubernetes-int-or-string"] is True
    assert cpu["pattern"] == specs.QUANTITY_PATTERN
    assert worker["env"]["x-kubernetes-list-map-keys"] == ["name"]
    assert worker["env"]["items"]["required"] == ["name"]
