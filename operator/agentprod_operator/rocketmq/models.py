"""What the RocketMQ admin client returns: frozen dataclasses, no I/O.

Built from reply bodies by :mod:`agentprod_operator.rocketmq_bodies`; returned by
:mod:`agentprod_operator.rocketmq_admin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentprod_operator.rocketmq.fastjson import JsonValue

__all__ = [
    "BrokerData",
    "ClusterInfo",
    "ConsumeStats",
    "CustomizedRetry",
    "ExponentialRetry",
    "GroupConfig",
    "MessageQueue",
    "QueueData",
    "QueueOffsets",
    "QueueRange",
    "RetryPolicy",
    "TopicConfig",
    "TopicOffsets",
    "TopicRoute",
]

MASTER_ID = 0  # broker id of a master in ``brokerAddrs``


@dataclass(frozen=True)
class BrokerData:
    """One broker (a master and its replicas) as the name server knows it."""

    cluster: str
    name: str
    addrs: Mapping[int, str]  # broker id -> host:port; id 0 is the master

    @property
    def master_addr(self) -> str | None:
        return self.addrs.get(MASTER_ID)


@dataclass(frozen=True)
class ClusterInfo:
    """GET_BROKER_CLUSTER_INFO: cluster name -> broker names, broker name -> :class:`BrokerData`."""

    clusters: Mapping[str, tuple[str, ...]]
    brokers: Mapping[str, BrokerData]

    def master_addrs(self, cluster: str) -> tuple[str, ...]:
        """Master addresses of ``cluster``'s brokers, in broker-name order (empty if unknown)."""
        found = (self.brokers.get(name) for name in sorted(self.clusters.get(cluster, ())))
        return tuple(b.master_addr for b in found if b is not None and b.master_addr)

    def all_master_addrs(self) -> tuple[str, ...]:
        """Master addresses of every broker, in broker-name order."""
        brokers = (self.brokers[name] for name in sorted(self.brokers))
        return tuple(b.master_addr for b in brokers if b.master_addr)


@dataclass(frozen=True)
class QueueData:
    """A topic's queues on one broker (from its route)."""

    broker_name: str
    read_queues: int
    write_queues: int
    perm: int
    topic_sys_flag: int = 0


@dataclass(frozen=True)
class TopicRoute:
    """GET_ROUTEINFO_BY_TOPIC: where a topic's queues live."""

    topic: str
    queues: tuple[QueueData, ...]
    brokers: tuple[BrokerData, ...]

    @property
    def read_queues(self) -> int:
        return sum(q.read_queues for q in self.queues)

    @property
    def write_queues(self) -> int:
        return sum(q.write_queues for q in self.queues)

    def master_addrs(self) -> tuple[str, ...]:
        """Master addresses of the brokers that hold the topic's queues."""
        names = {q.broker_name for q in self.queues}
        found = sorted((b for b in self.brokers if b.name in names), key=lambda b: b.name)
        return tuple(b.master_addr for b in found if b.master_addr)


@dataclass(frozen=True)
class TopicConfig:
    """A topic's settings as its brokers store them (first master that has it)."""

    topic: str
    read_queues: int
    write_queues: int
    perm: int
    message_type: str  # the ``message.type`` attribute; NORMAL when unset, as on the broker
    order: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    broker_names: tuple[str, ...] = ()  # every master broker that has the topic


@dataclass(frozen=True)
class ExponentialRetry:
    """``groupRetryPolicy`` EXPONENTIAL: delay = min(initial * multiplier^n, max)."""

    initial_ms: int = 5_000
    max_ms: int = 7_200_000
    multiplier: int = 2


@dataclass(frozen=True)
class CustomizedRetry:
    """``groupRetryPolicy`` CUSTOMIZED: the n-th retry waits ``next_ms[n]``."""

    next_ms: tuple[int, ...]


RetryPolicy = ExponentialRetry | CustomizedRetry


@dataclass(frozen=True)
class GroupConfig:
    """A consumer group's SubscriptionGroupConfig (first master that has it)."""

    group: str
    retry_max_times: int
    orderly: bool
    consume_enable: bool = True
    retry_policy: RetryPolicy | None = None  # None: the broker's default (CUSTOMIZED, 1s…2h)
    broker_names: tuple[str, ...] = ()  # every master broker that has the group
    raw: Mapping[str, JsonValue] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, order=True)
class MessageQueue:
    """One queue: topic, broker name and queue id."""

    topic: str
    broker_name: str
    queue_id: int


@dataclass(frozen=True)
class QueueOffsets:
    """A group's position in one queue; ``lag`` = broker (max) offset - consumer offset."""

    queue: MessageQueue
    broker_offset: int
    consumer_offset: int
    pull_offset: int = 0
    last_timestamp: int = 0  # store time (ms) of the last consumed message, 0 if none

    @property
    def lag(self) -> int:
        return max(0, self.broker_offset - self.consumer_offset)


@dataclass(frozen=True)
class ConsumeStats:
    """A group's offsets on a topic and its pop retry topic(s) ``%RETRY%{group}_{topic}``.

    For POP consumers the consumer offset moves when a message is *delivered*, not acked
    (brief B4): received-but-unacked messages do not count until they expire into the retry
    topic. ``fallback_brokers`` lists brokers that had no offsets for the group, whose queues
    count from offset 0 (max offsets from GET_TOPIC_STATS_INFO).
    """

    group: str
    topic: str
    queues: tuple[QueueOffsets, ...]
    consume_tps: float = 0.0
    fallback_brokers: tuple[str, ...] = ()

    @property
    def lag(self) -> int:
        """Messages not yet delivered: Σ(broker offset - consumer offset) over every queue."""
        return sum(q.lag for q in self.queues)

    @property
    def topic_lag(self) -> int:
        return sum(q.lag for q in self.queues if q.queue.topic == self.topic)

    @property
    def retry_lag(self) -> int:
        return sum(q.lag for q in self.queues if q.queue.topic != self.topic)


@dataclass(frozen=True)
class QueueRange:
    """GET_TOPIC_STATS_INFO for one queue: first and next offsets, last store time (ms)."""

    queue: MessageQueue
    min_offset: int
    max_offset: int
    last_update_timestamp: int = 0


@dataclass(frozen=True)
class TopicOffsets:
    """Offsets of every queue of a topic across its brokers."""

    topic: str
    queues: tuple[QueueRange, ...]

    @property
    def total(self) -> int:
        """Σ max offset: how many messages were ever written to the topic."""
        return sum(q.max_offset for q in self.queues)

    @property
    def per_queue(self) -> dict[MessageQueue, int]:
        return {q.queue: q.max_offset for q in self.queues}
