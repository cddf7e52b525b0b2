"""The committed CRD is exactly the generator's output, and its schema carries the rules."""

from pathlib import Path

import yaml
from agentprod_operator import crds
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
            return "$ref" in node or "anyOf" in node or any(refs(v) for v in node.values())
        if isinstance(node, list):
            return any(refs(v) for v in node)
        return False

    assert not refs(spec)
