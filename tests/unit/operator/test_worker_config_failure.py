"""A worker that stops on its configuration (exit 2, one line naming the variable) is read from
its pod status (pure): which container states count, which message is kept, which pod wins."""

from __future__ import annotations

from typing import Any

import pytest
from agentprod_operator import conditions, specs
from agentprod_operator.conditions import Condition
from agentprod_operator.reconcile import executor, pods, workloads

LINE = "agentprod: invalid configuration: AGENT: unknown agent 'nope'; registered: chat, echo"
WANT = "worker pod p-1: invalid configuration: AGENT: unknown agent 'nope'; registered: chat, echo"


def exited(code: int, message: str | None = LINE) -> dict[str, Any]:
    out: dict[str, Any] = {"exitCode": code, "reason": "Error" if code else "Completed"}
    if message is not None:
        out["message"] = message
    return out


def pod(
    name: str = "p-1",
    *,
    state: dict[str, Any],
    last: dict[str, Any] | None = None,
    ready: bool = False,
    container: str = "worker",
    created: str = "2026-12-01T10:00:00Z",
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T10:05:00Z"
    status: dict[str, Any] = {"name": container, "ready": ready, "state": state, "lastState": {}}
    if last is not None:
        status["lastState"] = {"terminated": last}
    return {"metadata": metadata, "status": {"containerStatuses": [status]}}


BACKOFF = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}}
RUNNING = {"running": {"startedAt": "2026-12-01T10:01:00Z"}}


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        # Crash loop after a configuration exit: the usual sight.
        ([pod(state=BACKOFF, last=exited(2))], WANT),
        # The first exit, before any restart.
        ([pod(state={"terminated": exited(2)})], WANT),
        # Restarted after a code-2 exit and not Ready yet: still failing, no flapping.
        ([pod(state=RUNNING, last=exited(2), ready=False)], WANT),
        # Ready again (the configuration was fixed in place): fine.
        ([pod(state=RUNNING, last=exited(2), ready=True)], None),
        # Other exits are not configuration errors: OOM (137), a crash (1), a clean stop.
        ([pod(state=BACKOFF, last=exited(137))], None),
        ([pod(state=BACKOFF, last=exited(1))], None),
        ([pod(state={"terminated": exited(0)})], None),
        # Waiting for other reasons (image pull, first start): not this verdict.
        ([pod(state={"waiting": {"reason": "ImagePullBackOff"}})], None),
        ([pod(state={"waiting": {"reason": "ContainerCreating"}})], None),
        # Running and healthy, never failed.
        ([pod(state=RUNNING, ready=True)], None),
        # A sidecar exiting 2 is not the worker.
        ([pod(state=BACKOFF, last=exited(2), container="istio-proxy")], None),
        # A terminating pod (an old ReplicaSet's) no longer counts.
        ([pod(state=BACKOFF, last=exited(2), deleting=True)], None),
        # No pods (scaled to zero), or pods not scheduled yet (no containerStatuses).
        ([], None),
        ([{"metadata": {"name": "p-1"}, "status": {"phase": "Pending"}}], None),
    ],
)
def test_config_failure(listed: list[dict[str, Any]], expected: str | None) -> None:
    verdict = pods.config_failure(listed)
    assert (verdict.message if verdict else None) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # The log tail holds earlier lines too: the worker's own line is picked, unprefixed.
        ("starting\n" + LINE + "\n\n", WANT),
        (
            "agentprod: invalid configuration: AGENT_CONFIG (for agent sleep): max_seconds: "
            "Input should be a valid number",
            "worker pod p-1: invalid configuration: AGENT_CONFIG (for agent sleep): "
            "max_seconds: Input should be a valid number",
        ),
        # Another exit-2 message (an argument error): its last line.
        ("usage: agentprod ...\nagentprod: error: bad flag", "worker pod p-1: error: bad flag"),
        # No message (a policy of File, or an empty log): a pointer to the logs.
        (None, "worker pod p-1: exited with code 2; see `kubectl logs p-1`"),
    ],
)
def test_failure_message(message: str | None, expected: str) -> None:
    verdict = pods.config_failure([pod(state=BACKOFF, last=exited(2, message))])
    assert verdict == pods.ConfigFailure(pod="p-1", message=expected)


def test_a_long_message_is_cut() -> None:
    verdict = pods.config_failure([pod(state=BACKOFF, last=exited(2, "x" * 5000))])
    assert verdict is not None
    assert len(verdict.message) == pods.MAX_MESSAGE
    assert verdict.message.endswith("…")


def test_the_newest_pod_speaks_for_the_spec() -> None:
    old = pod("p-old", state=BACKOFF, last=exited(2, "agentprod: invalid configuration: old"))
    new = pod(
        "p-new",
        state=BACKOFF,
        last=exited(2, "agentprod: invalid configuration: new"),
        created="2026-12-01T11:00:00Z",
    )
    healthy = pod("p-ok", state=RUNNING, ready=True, created="2026-12-01T12:00:00Z")
    verdict = pods.config_failure([new, healthy, old])
    assert verdict == pods.ConfigFailure(
        pod="p-new", message="worker pod p-new: invalid configuration: new"
    )


def test_the_worker_container_reports_its_log_tail_on_error() -> None:
    spec = specs.AgentPipelineSpec.model_validate(
        {
            "rocketmq": {"nameServer": "ns:9876", "endpoint": "proxy:8081"},
            "topics": {"request": {"name": "T"}, "result": {"name": "R"}},
            "consumerGroup": {"name": "G"},
            "redis": {"url": "redis://r:6379/0"},
            "worker": {"image": "agentprod:dev"},
        }
    )
    deployment = workloads.desired_deployment(pipeline="p", namespace="n", spec=spec, replicas=1)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == pods.CONTAINER
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize(
    ("updates", "ready"),
    [
        # Workers stopping on their configuration make the pipeline not Ready, with their line.
        (
            [Condition(conditions.WORKERS_READY, False, pods.REASON, WANT)],
            (False, pods.REASON, WANT),
        ),
        # Workers merely unavailable (starting, scaled to zero) do not.
        (
            [Condition(conditions.WORKERS_READY, False, "WorkersUnavailable", "0/1")],
            (True, "Reconciled", "topics, group and workers set up"),
        ),
        # RocketMQ down comes first.
        (
            [
                Condition(conditions.TOPICS_READY, False, "RocketMQUnavailable", "down"),
                Condition(conditions.WORKERS_READY, False, pods.REASON, WANT),
            ],
            (False, "RocketMQUnavailable", "down"),
        ),
    ],
)
def test_ready_follows_the_workers_configuration(
    updates: list[Condition], ready: tuple[bool, str, str]
) -> None:
    found = executor._ready(updates)
    assert (found.status, found.reason, found.message) == ready


def test_workers_condition_names_the_failure() -> None:
    deployment = {"spec": {"replicas": 1}, "status": {"availableReplicas": 0}}
    failure = pods.ConfigFailure(pod="p-1", message=WANT)
    assert executor._workers_condition(deployment, failure) == Condition(
        conditions.WORKERS_READY, False, pods.REASON, WANT
    )
    assert executor._workers_condition(deployment, None).reason == "WorkersUnavailable"
