"""The AgentPipeline CRD's schema on a real kube-apiserver: what it refuses.

Every object of the spec declares its fields (only `agent.config` is free-form): under strict
field validation — kubectl's default — an unknown field is refused; a client that does not ask
for it (the API's default is Warn) gets the field pruned with a warning, so it is never stored
and never acted on. `worker.resources` quantities and `worker.env` entries have the Pod API's
shapes, so a bad value is refused here instead of failing every reconcile of the Deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.kubernetes import ControlPlane

COLLECTION = "/apis/agentprod.io/v1alpha1/namespaces/default/agentpipelines"


def pipeline(name: str, **worker: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agentprod.io/v1alpha1",
        "kind": "AgentPipeline",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "rocketmq": {"nameServer": "127.0.0.1:9876", "endpoint": "127.0.0.1:8081"},
            "topics": {"request": {"name": "TopicV"}, "result": {"name": "TopicVR"}},
            "consumerGroup": {"name": "GID_V"},
            "redis": {"url": "redis://127.0.0.1:6379/0"},
            "worker": {"image": "agentprod:dev"} | worker,
        },
    }


def apply(plane: ControlPlane, body: dict[str, Any]) -> tuple[int, str]:
    done = plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(body), check=False)
    return done.returncode, done.stderr


def test_a_valid_worker_is_accepted_as_given(api_server: ControlPlane) -> None:
    resources = {
        "requests": {"cpu": "100m", "memory": "128Mi", "nvidia.com/gpu": 1},
        "limits": {"cpu": 2, "memory": "1.5Gi"},
    }
    env = [
        {"name": "A", "value": "b"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                           "divisor": "1Mi"}}},
    ]  # fmt: skip
    code, err = apply(api_server, pipeline("valid", resources=resources, env=env))
    assert code == 0, err
    stored = json.loads(api_server.kubectl("get", "agentpipeline", "valid", "-o", "json").stdout)[
        "spec"
    ]["worker"]
    assert (stored["resources"], stored["env"]) == (resources, env)


@pytest.mark.parametrize(
    ("worker", "message"),
    [
        ({"imgae": "typo"}, 'unknown field "spec.worker.imgae"'),
        ({"resources": {"requestz": {"cpu": 1}}}, 'unknown field "spec.worker.resources.requestz"'),
        ({"env": [{"name": "A", "vaule": "b"}]}, 'unknown field "spec.worker.env[0].vaule"'),
    ],
)
def test_kubectl_is_refused_an_unknown_field(
    api_server: ControlPlane, worker: dict[str, Any], message: str
) -> None:
    code, err = apply(api_server, pipeline("unknown", **worker))
    assert code != 0
    assert message in err


def test_a_client_that_does_not_ask_for_strict_gets_the_field_pruned(
    api_server: ControlPlane, tmp_path: Path
) -> None:
    """The API server's default field validation (Warn): the unknown field never reaches
    the stored object, so the operator cannot act on it; a Strict request is refused."""
    body = pipeline("pruned", imgae="typo")
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    strict = api_server.kubectl(
        "create", "--raw", f"{COLLECTION}?fieldValidation=Strict", "-f", str(path), check=False
    )
    assert strict.returncode != 0
    assert "unknown field" in strict.stderr
    assert "spec.worker.imgae" in strict.stderr
    created = json.loads(api_server.kubectl("create", "--raw", COLLECTION, "-f", str(path)).stdout)
    assert "imgae" not in created["spec"]["worker"]
    assert created["spec"]["worker"]["image"] == "agentprod:dev"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"requests": {"cpu": "lots"}}, "spec.worker.resources.requests.cpu in body should match"),
        ({"requests": {"memory": "-1Gi"}}, "spec.worker.resources.requests.memory in body should"),
        ({"limits": {"cpu": -1}}, "should be greater than or equal to 0"),
        ({"limits": {"cpu": True}}, "must be of type"),
        ({"requests": {"bad key": "1"}}, "keys must match"),
        (
            {"requests": {"cpu": 2}, "limits": {"cpu": "500m"}},
            "a request must not exceed its limit",
        ),
        ({"requests": ["cpu"]}, "must be of type object"),
    ],
)
def test_a_bad_resources_value_is_refused(
    api_server: ControlPlane, resources: dict[str, Any], message: str
) -> None:
    code, err = apply(api_server, pipeline("badresources", resources=resources))
    assert code != 0
    assert message in err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ([{"name": "A", "value": "b", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
         "value and valueFrom are exclusive"),
        ([{"name": "A", "valueFrom": {}}], "valueFrom needs exactly one of"),
        ([{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"},
                                      "secretKeyRef": {"name": "s", "key": "k"}}}],
         "valueFrom needs exactly one of"),
        ([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
         "spec.worker.env[0].valueFrom.secretKeyRef.key: Required value"),
        ([{"name": "1 A", "value": "b"}], "spec.worker.env[0].name in body should match"),
        ([{"value": "b"}], "spec.worker.env[0].name: Required value"),
        ([{"name": "A", "value": 3}], "spec.worker.env[0].value in body must be of type string"),
        ([{"name": "A", "value": "b"}, {"name": "A", "value": "c"}],
         'spec.worker.env[1]: Duplicate value: {"name":"A"}'),
        ({"A": "b"}, "spec.worker.env"),
    ],
)  # fmt: skip
def test_a_bad_env_entry_is_refused(api_server: ControlPlane, env: Any, message: str) -> None:
    code, err = apply(api_server, pipeline("badenv", env=env))
    assert code != 0
    assert message in err
