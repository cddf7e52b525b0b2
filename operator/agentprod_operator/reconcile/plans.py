"""What to do about a pipeline's topics and consumer group, given what RocketMQ has (pure).

Topics are created when missing and adopted when present; queue increases are applied;
decreases are refused (RocketMQ cannot shrink a topic without losing messages) and reported
with the `NotSupported` reason while the topic keeps its queues.
"""

from __future__ import annotations

import dataclasses
import enum

from agentprod_operator import specs


@dataclasses.dataclass(frozen=True)
class SeenTopic:
    queues: int
    message_type: str


@dataclasses.dataclass(frozen=True)
class SeenGroup:
    max_retries: int


class Act(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"  # more queues or another message type
    KEEP = "keep"  # present and as wanted (adopted if we did not create it)
    REFUSE = "refuse"  # a queue decrease: left as is


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    topic: str
    act: Act
    queues: int  # what the topic will have
    message_type: str
    reason: str = ""


def plan_topic(want: specs.TopicSpec, seen: SeenTopic | None) -> TopicPlan:
    kind = want.messageType.value
    if seen is None:
        return TopicPlan(want.name, Act.CREATE, want.queues, kind)
    if want.queues < seen.queues:
        return TopicPlan(
            want.name,
            Act.REFUSE,
            seen.queues,
            seen.message_type,
            reason=f"topic {want.name} has {seen.queues} queues; decreasing to {want.queues} "
            "is not supported",
        )
    if want.queues > seen.queues or kind != seen.message_type:
        return TopicPlan(want.name, Act.UPDATE, want.queues, kind)
    return TopicPlan(want.name, Act.KEEP, seen.queues, seen.message_type)


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    group: str
    act: Act
    max_retries: int


def plan_group(want: specs.ConsumerGroupSpec, seen: SeenGroup | None) -> GroupPlan:
    if seen is None:
        return GroupPlan(want.name, Act.CREATE, want.maxRetries)
    if seen.max_retries != want.maxRetries:
        return GroupPlan(want.name, Act.UPDATE, want.maxRetries)
    return GroupPlan(want.name, Act.KEEP, want.maxRetries)


def backoff_seconds(failures: int, *, base: float = 2.0, cap: float = 60.0) -> float:
    """Delay before the next attempt after `failures` consecutive failed reconciles."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))
