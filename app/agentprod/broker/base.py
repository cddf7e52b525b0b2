"""The broker interface the API and the worker are written against.

Both implementations keep RocketMQ 5 SimpleConsumer semantics: a received message stays
invisible for `invisible_seconds`, comes back with `attempt + 1` unless acked, and after the
group's max retries leaves the topic for the dead-letter queue.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or refused the call; safe to retry later."""


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """A message to publish."""

    topic: str
    body: bytes
    key: str
    tag: str
    properties: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Delivery:
    """A received message; `handle` is the backend's own object (receipt, client message)."""

    body: bytes
    message_id: str
    attempt: int
    key: str
    handle: object
    #: The message's user properties (`traceparent` among them when tracing is on).
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Which of the worker's consumers received it ("" the request topic's, "high" the
    #: high-priority topic's): its ack and invisibility changes go back through that one.
    lane: str = ""


def with_context(message: Outgoing, context: dict[str, str]) -> Outgoing:
    """The message carrying the trace context (`traceparent`) among its properties."""
    if not context:
        return message
    return dataclasses.replace(message, properties=context | message.properties)


class Publisher(Protocol):
    #: The longest a `send` takes to answer, retries included: the API waits a little longer,
    #: so a send it gives up on has failed for good (its message was not stored).
    send_budget_seconds: float

    async def start(self) -> None: ...

    async def send(self, message: Outgoing) -> str:
        """Publish and return the message id; raise BrokerUnavailable on failure."""
        ...

    async def check(self) -> None:
        """Raise BrokerUnavailable when the broker cannot take messages now."""
        ...

    async def close(self) -> None: ...


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def receive(self, *, max_messages: int, invisible_seconds: int) -> list[Delivery]:
        """Long-poll for up to `max_messages`; an empty list when none arrived in time."""
        ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def change_invisible(self, delivery: Delivery, *, seconds: float) -> None:
        """Extend (renew) or shorten (nack with a delay) the time before redelivery."""
        ...

    async def close(self) -> None: ...
