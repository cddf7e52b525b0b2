"""The autoscaler's reads: lag and consume rate from RocketMQ, in-flight work and the
model-side signals (`agentprod.llm.signals`) from Redis, and the dead letters of the group.
A failed read gives None (unknown), never zero, so the pure rules hold the replicas instead
of scaling to zero on an outage.
"""

from __future__ import annotations

import dataclasses
import logging

from agentprod import store as stores
from agentprod.llm import signals

from agentprod_operator import specs
from agentprod_operator.rocketmq import admin
from agentprod_operator.rocketmq.models import ConsumeStats
from agentprod_operator.rocketmq.remoting import RemotingError, ResponseCode
from agentprod_operator.scaling.models import ProviderLoad, Sample

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Readings:
    """Counters carried between polls to turn consumer offsets into a consume rate."""

    consumed_total: int | None = None
    consumed_at: float | None = None


async def read_sample(
    *,
    client: admin.RocketMQAdmin,
    store: stores.TaskStore | None,
    spec: specs.AgentPipelineSpec,
    readings: Readings,
    now: float,
) -> Sample:
    """One sample: lag (the request topic, its high-priority twin and their retry topics),
    consume rate and in-flight tasks."""
    lag: int | None = None
    rate: float | None = None
    try:
        group = spec.consumerGroup.name
        stats = [await client.consume_stats(group=group, topic=spec.topics.request.name)]
        try:
            stats.append(await client.consume_stats(group=group, topic=spec.topics.priority.name))
        except RemotingError as error:
            if error.code != ResponseCode.TOPIC_NOT_EXIST:
                raise
            # no high topic (not reconciled yet, or a pre-priority setup): nothing queued there
        lag, consumed = backlog(stats)
        if readings.consumed_total is not None and readings.consumed_at is not None:
            elapsed = now - readings.consumed_at
            if elapsed > 0:
                rate = max(0.0, (consumed - readings.consumed_total) / elapsed)
        readings.consumed_total, readings.consumed_at = consumed, now
    except RemotingError as error:
        log.warning("lag read failed: %s", error)
    in_flight: int | None = None
    if store is not None:
        try:
            in_flight = await store.in_flight(now=now)
        except stores.StoreUnavailable as error:  # Redis down: unknown, never idle
            log.warning("in-flight read failed: %s", error)
    provider = await provider_load(store, spec=spec, now=now)
    return Sample(at=now, lag=lag, in_flight=in_flight, consumed_per_second=rate, provider=provider)


def backlog(stats: list[ConsumeStats]) -> tuple[int, int]:
    """(lag, consumed) summed over the topics the workers consume: what is left to deliver
    and the consumer offsets (their growth is the consume rate)."""
    lag = sum(one.lag for one in stats)
    consumed = sum(queue.consumer_offset for one in stats for queue in one.queues)
    return lag, consumed


def signal_window(spec: specs.AgentPipelineSpec) -> float:
    """Seconds of model-side signals one reading sums: two polls, at least 30 s."""
    return max(30.0, 2.0 * spec.scaling.pollSeconds)


async def provider_load(
    store: stores.TaskStore | None, *, spec: specs.AgentPipelineSpec, now: float
) -> ProviderLoad | None:
    """The group's model-side signals of the window before `now`; None if unreadable."""
    if store is None or not spec.scaling.provider.enabled:
        return None
    try:
        totals = await signals.read(
            store.client,
            group=spec.consumerGroup.name,
            now=now,
            window_seconds=signal_window(spec),
        )
    except Exception as error:  # Redis down: unknown, the cap in force is kept
        log.warning("provider signal read failed: %s", error)
        return None
    return ProviderLoad(
        window_seconds=totals.window_seconds,
        ok=totals.ok,
        throttled=totals.throttled,
        limited=totals.limited,
        call_seconds=totals.call_seconds,
        tokens=totals.tokens,
    )


async def dead_letters(client: admin.RocketMQAdmin, *, group: str) -> int | None:
    """Messages kept in the group's dead-letter topic (0 before the first); None if unreadable."""
    try:
        offsets = await client.max_offsets(f"%DLQ%{group}")
    except RemotingError as error:
        log.warning("dead-letter read failed: %s", error)
        return None
    if offsets is None:
        return 0  # RocketMQ creates the topic with the first dead letter
    return sum(queue.max_offset - queue.min_offset for queue in offsets.queues)
