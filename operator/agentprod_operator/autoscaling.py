"""The autoscaler's loop for one pipeline (a kopf daemon): every `pollSeconds` read lag from
RocketMQ and in-flight work from Redis, ask the pure `scaling.decide`, set the worker
Deployment's replicas through its scale subresource, and report in status, Events and metrics.

A failed read is passed to `decide` as a missing sample, which holds the replicas: a lag read
failure never scales to zero.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from agentprod import keys

from agentprod_operator import conditions, metrics, scaling, specs, workloads
from agentprod_operator.conditions import Condition
from agentprod_operator.kube import Kube
from agentprod_operator.remoting import RemotingError
from agentprod_operator.rocketmq_admin import RocketMQAdmin
from agentprod_operator.scaling_models import History, Sample, ScalingPolicy

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Readings:
    """Counters carried between polls to turn consumer offsets into a consume rate."""

    consumed_total: int | None = None
    consumed_at: float | None = None


async def read_sample(
    *,
    admin: RocketMQAdmin,
    redis_client: aioredis.Redis | None,
    spec: specs.AgentPipelineSpec,
    readings: Readings,
    now: float,
) -> Sample:
    lag: int | None = None
    rate: float | None = None
    try:
        stats = await admin.consume_stats(
            group=spec.consumerGroup.name, topic=spec.topics.request.name
        )
        lag = stats.lag
        consumed = sum(queue.consumer_offset for queue in stats.queues)
        if readings.consumed_total is not None and readings.consumed_at is not None:
            elapsed = now - readings.consumed_at
            if elapsed > 0:
                rate = max(0.0, (consumed - readings.consumed_total) / elapsed)
        readings.consumed_total, readings.consumed_at = consumed, now
    except RemotingError as error:
        log.warning("lag read failed: %s", error)
    in_flight: int | None = None
    if redis_client is not None:
        try:
            in_flight = int(
                await redis_client.zcount(
                    keys.running(spec.consumerGroup.name), int(now * 1000), "+inf"
                )
            )
        except Exception as error:  # Redis down: treat as unknown, never as idle
            log.warning("in-flight read failed: %s", error)
    return Sample(at=now, lag=lag, in_flight=in_flight, consumed_per_second=rate)


async def dead_letters(admin: RocketMQAdmin, *, group: str) -> int | None:
    """Messages kept in the group's dead-letter topic (0 before the first); None if unreadable."""
    try:
        offsets = await admin.max_offsets(f"%DLQ%{group}")
    except RemotingError as error:
        log.warning("dead-letter read failed: %s", error)
        return None
    if offsets is None:
        return 0  # RocketMQ creates the topic with the first dead letter
    return sum(queue.max_offset - queue.min_offset for queue in offsets.queues)


async def run(
    *,
    name: str,
    namespace: str,
    body: Any,
    spec_view: Any,
    stopped: Any,
    kube: Kube,
    emit: Any,
) -> None:
    """Poll and scale until `stopped`; `spec_view` is kopf's live view of the spec."""
    history = History()
    readings = Readings()
    redis_client: aioredis.Redis | None = None
    redis_url: str | None = None
    admin: RocketMQAdmin | None = None  # one connection for every poll of this pipeline
    admin_for: str | None = None
    try:
        while not stopped:
            spec = specs.AgentPipelineSpec.model_validate(dict(spec_view))
            if admin is None or admin_for != spec.rocketmq.nameServer:
                if admin is not None:
                    await admin.close()
                admin = RocketMQAdmin(name_servers=spec.rocketmq.nameServer, timeout=5.0)
                admin_for = spec.rocketmq.nameServer
            url = await _redis_url(kube, namespace=namespace, spec=spec)
            if url != redis_url:
                if redis_client is not None:
                    await redis_client.aclose()
                redis_client = (
                    aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                    if url
                    else None
                )
                redis_url = url
            history = await _poll(
                admin=admin,
                name=name,
                namespace=namespace,
                body=body,
                spec=spec,
                kube=kube,
                history=history,
                readings=readings,
                redis_client=redis_client,
                emit=emit,
            )
            await stopped.wait(spec.scaling.pollSeconds)
    finally:
        if redis_client is not None:
            await redis_client.aclose()
        if admin is not None:
            await admin.close()


async def _poll(
    *,
    admin: RocketMQAdmin,
    name: str,
    namespace: str,
    body: Any,
    spec: specs.AgentPipelineSpec,
    kube: Kube,
    history: History,
    readings: Readings,
    redis_client: aioredis.Redis | None,
    emit: Any,
) -> History:
    deployment = await kube.deployment(namespace=namespace, name=workloads.name_for(name))
    if deployment is None:
        return history  # the reconcile handler creates it
    current = int(deployment["spec"].get("replicas") or 0)
    annotations = dict(body.get("metadata", {}).get("annotations") or {})
    policy = ScalingPolicy.from_spec(
        spec.scaling, concurrency=spec.worker.concurrency, annotations=annotations
    )
    now = time.time()
    sample = await read_sample(
        admin=admin, redis_client=redis_client, spec=spec, readings=readings, now=now
    )
    decision = scaling.decide(
        policy=policy, samples=[sample], current_replicas=current, history=history, now=now
    )
    labels = {"namespace": namespace, "pipeline": name}
    status = dict(body.get("status") or {})
    patch: dict[str, Any] = {
        "lag": sample.lag if sample.lag is not None else status.get("lag"),
        "inFlight": sample.in_flight if sample.in_flight is not None else status.get("inFlight"),
        "desiredReplicas": decision.replicas,
        "replicas": int((deployment.get("status") or {}).get("replicas") or 0),
    }
    if decision.replicas != current:
        await kube.scale_deployment(
            namespace=namespace, name=workloads.name_for(name), replicas=decision.replicas
        )
        patch["lastScaleTime"] = _now()
        metrics.SCALE_EVENTS.labels(**labels).inc()
        emit("Scaled", f"worker replicas {current} → {decision.replicas}: {decision.message}")
    active = Condition(
        conditions.SCALING_ACTIVE,
        decision.reason.value != "paused",
        _camel(decision.reason.value),
        decision.message,
    )
    patch["conditions"] = conditions.merge(
        status.get("conditions") or [],
        [active],
        now=_now(),
        generation=int(body["metadata"].get("generation", 0)),
    )
    changed = {key: value for key, value in patch.items() if status.get(key) != value}
    if changed:
        await kube.patch_pipeline_status(namespace=namespace, name=name, status=changed)
    for gauge, value in ((metrics.LAG, sample.lag), (metrics.IN_FLIGHT, sample.in_flight)):
        if value is not None:
            gauge.labels(**labels).set(value)
    dead = await dead_letters(admin, group=spec.consumerGroup.name)
    if dead is not None:
        metrics.DEAD_LETTERS.labels(**labels).set(dead)
    metrics.DESIRED.labels(**labels).set(decision.replicas)
    metrics.CURRENT.labels(**labels).set(current)
    metrics.DECISIONS.labels(**labels, reason=decision.reason.value).inc()
    metrics.REASON.labels(**labels).state(decision.reason.value)
    return decision.history


async def _redis_url(kube: Kube, *, namespace: str, spec: specs.AgentPipelineSpec) -> str | None:
    if spec.redis.url:
        return spec.redis.url
    ref = spec.redis.secretRef
    if ref is None:
        return None
    return await kube.secret_value(namespace=namespace, name=ref.name, key=ref.key)


def _camel(reason: str) -> str:
    return "".join(part.capitalize() for part in reason.replace("_", "-").split("-"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
