"""The operator's typed view of `worker.resources` and `worker.env` refuses what the CRD does
(for a spec that reached it some other way) and hands the Deployment the Pod API's shapes."""

from __future__ import annotations

from typing import Any

import pytest
from agentprod_operator import specs
from pydantic import ValidationError


@pytest.mark.parametrize(
    "resources",
    [
        {"requests": {"cpu": "lots"}},
        {"requests": {"cpu": "-1"}},
        {"limits": {"memory": -5}},
        {"requestz": {"cpu": 1}},
        {"requests": {"bad key": 1}},
    ],
)
def test_bad_resources_are_refused(resources: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        specs.WorkerSpec(image="x", resources=resources)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "A", "value": "b", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
        [{"name": "A", "valueFrom": {}}],
        [{"name": "1 A", "value": "b"}],
        [{"name": "A", "vaule": "b"}],
        [{"value": "b"}],
    ],
)
def test_bad_env_is_refused(env: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        specs.WorkerSpec(image="x", env=env)  # type: ignore[arg-type]


def test_good_values_round_trip_to_the_pod_shapes() -> None:
    env = [
        {"name": "A", "value": "b"},
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    resources = {"requests": {"cpu": "100m", "nvidia.com/gpu": 1}, "limits": {"memory": "1Gi"}}
    worker = specs.WorkerSpec.model_validate({"image": "x", "env": env, "resources": resources})
    assert [item.model_dump(exclude_none=True) for item in worker.env] == env
    assert worker.resources.model_dump(exclude_none=True) == resources
