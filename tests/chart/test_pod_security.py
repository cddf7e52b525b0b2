"""Secure defaults: every pod of every scenario runs locked down."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.charts import (
    SCENARIOS,
    Chart,
    pod_specs,
    scenario_objects,
)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_locked_down(chart: Chart, scenario: Any) -> None:
    pods = pod_specs(scenario_objects(chart, scenario))
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            assert "resources" not in container or container["resources"], name
