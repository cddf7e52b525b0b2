"""One reconcile pass of an AgentPipeline: RocketMQ topics and group, the worker Deployment,
and the status to write. Called by the kopf handlers on create/update/resume and by the timer.

Decisions come from the pure modules (`plans`, `workloads`, `conditions`); this module only
performs them and reports what happened as a status patch plus the events worth posting.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from agentprod_operator import conditions, connections, specs
from agentprod_operator.conditions import Condition
from agentprod_operator.kube import Kube
from agentprod_operator.reconcile import plans, pods, workloads
from agentprod_operator.rocketmq.admin import RocketMQAdmin
from agentprod_operator.rocketmq.remoting import RemotingError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclasses.dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event]
    rocketmq_ok: bool


async def reconcile(
    *,
    name: str,
    namespace: str,
    generation: int,
    spec: specs.AgentPipelineSpec,
    status: dict[str, Any],
    owner: Callable[[dict[str, Any]], None],
    kube: Kube,
    admin_factory: connections.AdminFactory,
    now: str,
) -> Outcome:
    """Bring RocketMQ and the Deployment to the spec; return the status patch and events."""
    events: list[Event] = []
    updates: list[Condition] = []
    target = await connections.admin_target(kube, namespace=namespace, spec=spec)
    admin = admin_factory(target)
    rocketmq_ok = True
    try:
        topics = await _ensure_topics(admin, spec, events)
        group = await _ensure_group(admin, spec, events)
        updates += [topics, group]
    except RemotingError as error:  # unreachable, or refused by a broker
        rocketmq_ok = False
        message = f"RocketMQ at {spec.rocketmq.nameServer} unavailable: {error}"
        updates += [
            Condition(conditions.TOPICS_READY, False, "RocketMQUnavailable", message),
            Condition(conditions.GROUP_READY, False, "RocketMQUnavailable", message),
        ]
    finally:
        await admin.close()

    live = await kube.deployment(namespace=namespace, name=workloads.name_for(name))
    replicas = (live or {}).get("spec", {}).get("replicas", workloads.initial_replicas(spec))
    desired = workloads.desired_deployment(
        pipeline=name, namespace=namespace, spec=spec, replicas=replicas
    )
    owner(desired)
    change, deployment = await kube.ensure_deployment(desired)
    if change != "unchanged":
        events.append(
            Event(
                f"Deployment{change.capitalize()}",
                f"worker Deployment {desired['metadata']['name']} {change}",
            )
        )
    failure = await _config_failure(kube, name=name, namespace=namespace)
    updates.append(_workers_condition(deployment, failure))

    ready = _ready(updates)
    updates.append(ready)
    merged = conditions.merge(
        status.get("conditions") or [], updates, now=now, generation=generation
    )
    if conditions.status_of(status.get("conditions") or [], conditions.READY) != (
        "True" if ready.status else "False"
    ):
        events.append(
            Event("Ready" if ready.status else "NotReady", ready.message, warning=not ready.status)
        )
    deployment_status = deployment.get("status") or {}
    patch = {
        "observedGeneration": generation,
        "conditions": merged,
        "replicas": deployment_status.get("replicas", 0),
        "desiredReplicas": deployment.get("spec", {}).get("replicas", replicas),
    }
    return Outcome(status=patch, events=events, rocketmq_ok=rocketmq_ok)


async def _ensure_topics(
    admin: RocketMQAdmin, spec: specs.AgentPipelineSpec, events: list[Event]
) -> Condition:
    refused: list[str] = []
    for want in spec.topics.all:
        found = await admin.topic_config(want.name)
        seen = (
            None
            if found is None
            else plans.SeenTopic(
                queues=min(found.read_queues, found.write_queues), message_type=found.message_type
            )
        )
        plan = plans.plan_topic(want, seen)
        if plan.act in (plans.Act.CREATE, plans.Act.UPDATE):
            await admin.create_or_update_topic(
                cluster=spec.rocketmq.cluster,
                topic=plan.topic,
                queues=plan.queues,
                message_type=plan.message_type,
            )
            verb = "created" if plan.act is plans.Act.CREATE else "updated"
            events.append(
                Event(
                    f"Topic{verb.capitalize()}",
                    f"topic {plan.topic} {verb}: {plan.queues} queues, {plan.message_type}",
                )
            )
        elif plan.act is plans.Act.REFUSE:
            refused.append(plan.reason)
    if refused:
        return Condition(conditions.TOPICS_READY, False, "NotSupported", "; ".join(refused))
    return Condition(
        conditions.TOPICS_READY,
        True,
        "TopicsReconciled",
        f"{spec.topics.request.name}, {spec.topics.priority.name} and "
        f"{spec.topics.result.name} present",
    )


async def _ensure_group(
    admin: RocketMQAdmin, spec: specs.AgentPipelineSpec, events: list[Event]
) -> Condition:
    want = spec.consumerGroup
    found = await admin.group_config(want.name)
    seen = None if found is None else plans.SeenGroup(max_retries=found.retry_max_times)
    plan = plans.plan_group(want, seen)
    if plan.act is not plans.Act.KEEP:
        await admin.create_or_update_group(
            cluster=spec.rocketmq.cluster, group=plan.group, max_retries=plan.max_retries
        )
        verb = "created" if plan.act is plans.Act.CREATE else "updated"
        events.append(
            Event(
                f"ConsumerGroup{verb.capitalize()}",
                f"consumer group {plan.group} {verb}: max retries {plan.max_retries}",
            )
        )
    return Condition(
        conditions.GROUP_READY,
        True,
        "GroupReconciled",
        f"{want.name} present, max retries {want.maxRetries}",
    )


async def _config_failure(kube: Kube, *, name: str, namespace: str) -> pods.ConfigFailure | None:
    """Whether the worker pods stop on their configuration (None also when they can't be read)."""
    try:
        listed = await kube.pods(namespace=namespace, selector=workloads.selector_labels(name))
    except ApiException as error:
        log.warning("worker pods of %s/%s not read: %s", namespace, name, error.reason)
        return None
    return pods.config_failure(listed)


def _workers_condition(deployment: dict[str, Any], failure: pods.ConfigFailure | None) -> Condition:
    if failure is not None:
        return Condition(conditions.WORKERS_READY, False, pods.REASON, failure.message)
    wanted = deployment.get("spec", {}).get("replicas", 0)
    available = (deployment.get("status") or {}).get("availableReplicas", 0) or 0
    if available >= wanted:
        return Condition(
            conditions.WORKERS_READY,
            True,
            "WorkersAvailable",
            f"{available}/{wanted} workers available",
        )
    return Condition(
        conditions.WORKERS_READY,
        False,
        "WorkersUnavailable",
        f"{available}/{wanted} workers available",
    )


def _ready(updates: list[Condition]) -> Condition:
    """Ready: RocketMQ topics and group match the spec and the Deployment is in place.

    Worker availability is reported by WorkersReady on its own: pods may legitimately be
    scaled to zero or still starting while the pipeline itself is ready to take tasks. Workers
    that stop on their configuration (an agent the image does not register) block it: no pod
    of that spec will ever take a task.
    """
    blocking = [
        u
        for u in updates
        if not u.status
        and (
            u.type in (conditions.TOPICS_READY, conditions.GROUP_READY)
            or (u.type == conditions.WORKERS_READY and u.reason == pods.REASON)
        )
    ]
    if not blocking:
        return Condition(conditions.READY, True, "Reconciled", "topics, group and workers set up")
    first = blocking[0]
    return Condition(conditions.READY, False, first.reason, first.message)
