"""The Argo CD health check of AgentPipeline (deploy/argocd/agentpipeline-health.lua).

Runs the Lua under Lua 5.1 (the dialect of gopher-lua, which Argo CD embeds) the way Argo CD
does: the resource as the global `obj`, the chunk's return value as the health. Cases: no
status yet, status older than the spec, Ready True/False with each terminal and a transient
reason, pause by spec and by annotation (same parsing as the operator), deletion; and the
argocd-cm example embedding the file verbatim.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml
from agentprod_operator import specs
from agentprod_operator.scaling import models as scaling_models

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "argocd" / "agentpipeline-health.lua"
CONFIGMAP = ROOT / "deploy" / "argocd" / "argocd-cm.yaml"
HEALTH_KEY = "resource.customizations.health.agentprod.io_AgentPipeline"
TERMINAL_REASONS = {"NotSupported", "InvalidSpec", "WorkerConfigInvalid"}


def health(resource: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime()
    runtime.globals().obj = runtime.table_from(resource, recursive=True)
    answer = runtime.execute(SCRIPT.read_text())
    return str(answer["status"]), str(answer["message"] or "")


def ready(status: str, reason: str, *, generation: int = 2, message: str = "") -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def pipeline(
    *,
    conditions: list[dict[str, Any]] | None = None,
    observed: int | None = 2,
    generation: int = 2,
    paused: bool = False,
    annotations: dict[str, str] | None = None,
    with_status: bool = True,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "apiVersion": "agentprod.io/v1alpha1",
        "kind": "AgentPipeline",
        "metadata": {"name": "price-alerts", "generation": generation},
        "spec": {"scaling": {"minReplicas": 0, "maxReplicas": 20, "paused": paused}},
    }
    if annotations is not None:
        resource["metadata"]["annotations"] = annotations
    if with_status:
        status: dict[str, Any] = {}
        if observed is not None:
            status["observedGeneration"] = observed
        if conditions is not None:
            status["conditions"] = conditions
        resource["status"] = status
    return resource


READY = ready("True", "Reconciled", message="topics, group and workers set up")
CASES = [
    # (id, resource, expected health, text the message contains)
    ("no-status", pipeline(with_status=False), "Progressing", "Waiting for the operator"),
    ("empty-status", pipeline(observed=None), "Progressing", "Waiting for the operator"),
    ("no-ready-condition", pipeline(conditions=[]), "Progressing", "Ready condition"),
    (
        "only-other-conditions",
        pipeline(conditions=[{"type": "ScalingActive", "status": "True", "reason": "Target"}]),
        "Progressing",
        "Ready condition",
    ),
    (
        "observed-generation-older",
        pipeline(conditions=[ready("True", "Reconciled", generation=1)], observed=1),
        "Progressing",
        "generation 2 (status is for 1)",
    ),
    (
        "observed-generation-missing",
        pipeline(
            conditions=[{k: v for k, v in READY.items() if k != "observedGeneration"}],
            observed=None,
        ),
        "Progressing",
        "status is for none",
    ),
    ("ready", pipeline(conditions=[READY]), "Healthy", "Reconciled: topics, group"),
    (
        "ready-workers-scaled-to-zero",
        pipeline(
            conditions=[
                READY,
                {"type": "WorkersReady", "status": "True", "reason": "WorkersAvailable"},
                {"type": "ScalingActive", "status": "True", "reason": "Idle"},
            ]
        ),
        "Healthy",
        "Reconciled",
    ),
    (
        "rocketmq-unavailable-is-retried",
        pipeline(conditions=[ready("False", "RocketMQUnavailable", message="namesrv down")]),
        "Progressing",
        "RocketMQUnavailable: namesrv down",
    ),
    (
        "unknown-reason",
        pipeline(conditions=[ready("False", "SomethingNew")]),
        "Progressing",
        "SomethingNew",
    ),
    (
        "ready-unknown-status",
        pipeline(conditions=[ready("Unknown", "Starting")]),
        "Progressing",
        "Starting",
    ),
    (
        "terminal-not-supported",
        pipeline(conditions=[ready("False", "NotSupported", message="cannot shrink TopicTest")]),
        "Degraded",
        "NotSupported: cannot shrink TopicTest",
    ),
    (
        # the operator's InvalidSpec answer sets the condition's observedGeneration only
        "terminal-invalid-spec",
        pipeline(conditions=[ready("False", "InvalidSpec", message="bad")], observed=1),
        "Degraded",
        "InvalidSpec: bad",
    ),
    (
        "terminal-reason-of-an-older-generation",
        pipeline(conditions=[ready("False", "NotSupported", generation=1)], observed=1),
        "Progressing",
        "generation 2",
    ),
    ("paused-by-spec", pipeline(conditions=[READY], paused=True), "Suspended", "paused"),
    (
        "paused-by-annotation",
        pipeline(conditions=[READY], annotations={scaling_models.PAUSED_ANNOTATION: "true"}),
        "Suspended",
        "paused",
    ),
    (
        "paused-but-not-ready",
        pipeline(conditions=[ready("False", "RocketMQUnavailable")], paused=True),
        "Progressing",
        "RocketMQUnavailable",
    ),
    (
        "paused-and-terminal",
        pipeline(conditions=[ready("False", "NotSupported")], paused=True),
        "Degraded",
        "NotSupported",
    ),
    (
        "paused-but-stale",
        pipeline(conditions=[ready("True", "Reconciled", generation=1)], observed=1, paused=True),
        "Progressing",
        "generation 2",
    ),
]


@pytest.mark.parametrize(
    ("resource", "expected", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_health(resource: dict[str, Any], expected: str, text: str) -> None:
    status, message = health(resource)
    assert (status, text in message) == (expected, True), message


@pytest.mark.parametrize("reason", sorted(TERMINAL_REASONS))
def test_each_terminal_reason_is_degraded(reason: str) -> None:
    assert health(pipeline(conditions=[ready("False", reason)]))[0] == "Degraded"


def test_terminal_reasons_are_the_operators() -> None:
    """The script's terminal set is this test's, and the operator really writes each reason."""
    table = re.search(r"local TERMINAL = \{(.*?)\n\}", SCRIPT.read_text(), re.S)
    assert table is not None
    assert set(re.findall(r"^\s*(\w+) = true", table.group(1), re.M)) == TERMINAL_REASONS
    source = "\n".join(
        path.read_text() for path in (ROOT / "operator" / "agentprod_operator").rglob("*.py")
    )
    for reason in TERMINAL_REASONS:
        assert f'"{reason}"' in source, reason


@pytest.mark.parametrize("value", ["true", "TRUE", " True\t", "false", "yes", "1", "", "truee"])
def test_pause_annotation_parsed_like_the_operator(value: str) -> None:
    annotations = {scaling_models.PAUSED_ANNOTATION: value}
    policy = scaling_models.ScalingPolicy.from_spec(
        specs.ScalingSpec(), concurrency=8, annotations=annotations
    )
    status, _ = health(pipeline(conditions=[READY], annotations=annotations))
    assert status == ("Suspended" if policy.paused else "Healthy")


def test_being_deleted_waits_for_the_finalizer() -> None:
    resource = pipeline(conditions=[READY])
    resource["metadata"] |= {
        "deletionTimestamp": "2025-01-01T00:00:00Z",
        "finalizers": ["agentprod.io/finalizer"],
    }
    assert health(resource) == (
        "Progressing",
        "Pending deletion; waiting for finalizers: agentprod.io/finalizer",
    )


def test_argocd_cm_embeds_the_script_verbatim() -> None:
    configmap = yaml.safe_load(CONFIGMAP.read_text())
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert configmap["data"][HEALTH_KEY] == SCRIPT.read_text()
