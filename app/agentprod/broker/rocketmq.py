"""RocketMQ 5 through its gRPC proxy, with the official `rocketmq-python-client`.

The official clients keep the session (settings handshake, heartbeats, routes, signing); they
are synchronous with their own I/O thread, so the call still made through them (receive) goes
through their future API and `asyncio.wrap_future`, and start-up
runs in a thread under a timeout (a client can wait forever for settings when the proxy is
unreachable). A failed client is replaced on the next use (a client cannot be restarted).

The hot path does not hop to that thread: sends (API and worker), acks and changes of
invisibility (worker) go over our own `grpc.aio` channel on the caller's event loop, signed by
the client's session; sends and acks are group-committed per topic — concurrent sends into one
`SendMessage` (the proxy stores the batch all or none), acks into one `AckMessage`. Receives
stay on the client (moved onto our channel, they kept fewer of a 512-slot worker's slots busy:
docs/benchmarks.md). Profile and figures: docs/benchmarks.md "Hot-path work".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import time
from typing import Any

import grpc
from rocketmq import (  # the client ships no type information
    ClientConfiguration,
    Credentials,
    FilterExpression,
    Producer,
    SimpleConsumer,
)
from rocketmq.grpc_protocol import (
    AckMessageEntry,
    AckMessageRequest,
    ChangeInvisibleDurationRequest,
    Code,
    Encoding,
    MessageType,
    MessagingServiceStub,
    SendMessageRequest,
)
from rocketmq.v5.util import MessageIdCodec, Misc

from agentprod import tracing
from agentprod.broker.base import BrokerUnavailable, Delivery, Outgoing, with_context
from agentprod.broker.batching import GroupCommit

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 20.0
RESTART_INTERVAL_SECONDS = 2.0
SEND_ATTEMPTS = 3  # as the official client: a failed request is retried twice
BATCH_MAX_MESSAGES = 64
BATCH_MAX_BYTES = 1 << 20  # well under the broker's 4 MiB maxMessageSize for a batch
BATCH_IN_FLIGHT = 2  # requests per topic in flight; later sends wait and leave together
_RETRIED_CODES = frozenset(
    {Code.INTERNAL_ERROR, Code.INTERNAL_SERVER_ERROR, Code.PROXY_TIMEOUT, Code.HA_NOT_AVAILABLE}
)
_CHANNEL_OPTIONS = [  # the official client's channel options
    ("grpc.enable_retries", 0),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


def configuration(
    *, endpoint: str, access_key: str, secret_key: str, namespace: str, timeout_seconds: int
) -> Any:
    return ClientConfiguration(
        endpoint,
        Credentials(access_key, secret_key),
        namespace=namespace,
        request_timeout=timeout_seconds,
    )


async def _start_client(client: Any, *, what: str) -> None:
    """Run the blocking `startup()` in a thread and give up after START_TIMEOUT_SECONDS."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, client.startup)
    try:
        await asyncio.wait_for(asyncio.shield(future), START_TIMEOUT_SECONDS)
    except TimeoutError:
        # The thread stays stuck in the client; shut it down once it returns.
        future.add_done_callback(lambda _: _shutdown_quietly(client))
        raise BrokerUnavailable(
            f"{what}: start-up timed out after {START_TIMEOUT_SECONDS}s"
        ) from None
    except Exception as error:
        raise BrokerUnavailable(f"{what}: start-up failed: {error}") from error


async def _settle(future: concurrent.futures.Future[Any], *, seconds: float, what: str) -> Any:
    """Await a client future under a watchdog: a lost callback must not hang the caller."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
    except TimeoutError:
        future.cancel()
        raise BrokerUnavailable(f"{what}: no answer within {seconds:.0f}s") from None
    except BrokerUnavailable:
        raise
    except Exception as error:
        raise BrokerUnavailable(f"{what} failed: {error}") from error


def _shutdown_quietly(client: Any) -> None:
    try:
        client.shutdown()
    except Exception as error:  # a client that never started refuses to shut down
        log.debug("rocketmq client shutdown: %s", error)


def _endpoint_reachable(endpoint: str, timeout: float = 1.0) -> bool:
    """TCP-connect to each `host:port` of the endpoint list; True if any accepts."""
    for address in filter(None, endpoint.split(";")):
        host, _, port = address.removeprefix("http://").rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


class RocketMQPublisher:
    """Producer for a fixed set of topics (routes are fetched at start)."""

    def __init__(self, *, config: Any, endpoint: str, topics: tuple[str, ...]) -> None:
        self._config = config
        # Up to SEND_ATTEMPTS requests, each bounded by the request timeout.
        self._send_limit = SEND_ATTEMPTS * config.request_timeout + 2.0
        # A first send may also wait for the producer's start-up.
        self.send_budget_seconds = START_TIMEOUT_SECONDS + self._send_limit
        self._endpoint = endpoint
        self._topics = topics
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._last_attempt = 0.0
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._ids = MessageIdCodec()
        self._born_host = str(Misc.get_local_ip())
        self._batches: GroupCommit[str, Outgoing, str] = GroupCommit(
            self._send_batch,
            size=lambda message: len(message.body),
            max_items=BATCH_MAX_MESSAGES,
            max_bytes=BATCH_MAX_BYTES,
            max_in_flight=BATCH_IN_FLIGHT,
        )

    async def start(self) -> None:
        async with self._lock:
            if self._producer is None:
                await self._start_locked()

    async def _start_locked(self) -> None:
        self._last_attempt = time.monotonic()
        producer = Producer(self._config, self._topics)
        await _start_client(producer, what=f"producer for {self._endpoint}")
        self._producer = producer

    async def _ensure(self) -> Any:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                if time.monotonic() - self._last_attempt < RESTART_INTERVAL_SECONDS:
                    raise BrokerUnavailable(f"RocketMQ producer for {self._endpoint} is not up")
                await self._start_locked()
            return self._producer

    async def send(self, message: Outgoing) -> str:
        """Publish (possibly batched with concurrent sends to the same topic); the message id."""
        with tracing.producer_span(message.topic, message.key) as context:
            await self._ensure()
            return await self._batches.submit(message.topic, with_context(message, context))

    async def _send_batch(self, topic: str, messages: list[Outgoing]) -> list[str]:
        producer = await self._ensure()
        if self._stub is None:  # on the loop that sends (a grpc.aio channel belongs to one loop)
            self._channel, self._stub = _messaging_stub(self._config)
        request, ids = self._request(topic, messages)
        deadline = time.monotonic() + self._send_limit
        what = f"send of {len(messages)} message(s) to {topic}"
        for attempt in range(1, SEND_ATTEMPTS + 1):
            timeout = min(float(self._config.request_timeout), deadline - time.monotonic())
            try:
                answer = await self._stub.SendMessage(
                    request, metadata=producer.sign(), timeout=max(timeout, 0.1)
                )
            except grpc.aio.AioRpcError as error:
                problem = f"{error.code().name}: {error.details()}"
            else:
                code = answer.status.code
                if code == Code.OK:
                    return ids
                problem = f"{Code.Name(code)}: {answer.status.message}"
                if code not in _RETRIED_CODES:
                    break
            if attempt < SEND_ATTEMPTS and time.monotonic() < deadline:
                log.debug("%s failed (attempt %d), retrying: %s", what, attempt, problem)
                continue
        raise BrokerUnavailable(f"{what} failed: {problem}")

    def _request(self, topic: str, messages: list[Outgoing]) -> tuple[Any, list[str]]:
        """One SendMessageRequest for `messages` (the fields the official client sets)."""
        request = SendMessageRequest()
        ids = []
        born = int(time.time())
        namespace = self._config.namespace
        for message in messages:
            if not message.body:
                raise BrokerUnavailable(f"send to {topic} refused: empty body")
            entry = request.messages.add()
            entry.topic.name = topic
            entry.topic.resource_namespace = namespace
            entry.body = message.body
            system = entry.system_properties
            system.tag = message.tag
            system.keys.append(message.key)
            message_id = self._ids.next_message_id()
            system.message_id = message_id
            system.message_type = MessageType.NORMAL
            system.born_timestamp.seconds = born
            system.born_host = self._born_host
            system.body_encoding = Encoding.IDENTITY
            if message.properties:
                entry.user_properties.update(message.properties)
            ids.append(message_id)
        return request, ids

    async def check(self) -> None:
        if not await asyncio.to_thread(_endpoint_reachable, self._endpoint):
            raise BrokerUnavailable(f"RocketMQ proxy {self._endpoint} unreachable")
        await self._ensure()

    async def close(self) -> None:
        await self._batches.close()
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        if self._producer is not None:
            await asyncio.to_thread(_shutdown_quietly, self._producer)
            self._producer = None


class RocketMQConsumer:
    """SimpleConsumer on one topic for one consumer group."""

    def __init__(
        self,
        *,
        config: Any,
        endpoint: str,
        group: str,
        topic: str,
        await_seconds: int,
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._group = group
        self._topic = topic
        self._await_seconds = await_seconds
        self._call_limit = float(config.request_timeout) + 2.0
        self._consumer: Any = None
        self._stub: Any = None
        self._channel: grpc.aio.Channel | None = None
        self._acks: GroupCommit[str, Any, str] = GroupCommit(
            self._ack_batch,
            size=lambda _: 1,
            max_items=BATCH_MAX_MESSAGES,
            max_in_flight=BATCH_IN_FLIGHT,
        )

    async def start(self) -> None:
        consumer = SimpleConsumer(
            self._config,
            self._group,
            {self._topic: FilterExpression()},
            await_duration=self._await_seconds,
        )
        await _start_client(consumer, what=f"consumer {self._group} on {self._endpoint}")
        self._consumer = consumer

    def _client(self) -> Any:
        if self._consumer is None:
            raise BrokerUnavailable("consumer is not started")
        return self._consumer

    def _messaging(self) -> Any:
        if self._stub is None:  # on the loop that uses it (a grpc.aio channel belongs to one loop)
            self._channel, self._stub = _messaging_stub(self._config)
        return self._stub

    async def receive(self, *, max_messages: int, invisible_seconds: int) -> list[Delivery]:
        try:
            future = self._client().receive_async(max_messages, invisible_seconds)
        except Exception as error:
            raise BrokerUnavailable(f"receive from {self._topic} failed: {error}") from error
        messages = await _settle(
            future,
            seconds=self._call_limit + self._await_seconds,
            what=f"receive from {self._topic}",
        )
        return [_delivery(message) for message in messages]

    async def ack(self, delivery: Delivery) -> None:
        """Ack; concurrent acks of one topic share one AckMessage request (group commit)."""
        message: Any = delivery.handle
        problem = await self._acks.submit(str(message.topic), message)
        if problem:
            raise BrokerUnavailable(f"ack on {self._topic} failed: {problem}")

    async def _ack_batch(self, topic: str, messages: list[Any]) -> list[str]:
        """One AckMessage request for `messages`; per message "" or what went wrong."""
        consumer = self._client()
        stub = self._messaging()
        namespace = self._config.namespace
        request = AckMessageRequest()
        request.group.name = self._group
        request.group.resource_namespace = namespace
        request.topic.name = topic
        request.topic.resource_namespace = namespace
        for message in messages:
            entry = AckMessageEntry()
            entry.message_id = message.message_id
            entry.receipt_handle = message.receipt_handle
            request.entries.append(entry)
        try:
            answer = await stub.AckMessage(
                request, metadata=consumer.sign(), timeout=float(self._config.request_timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise BrokerUnavailable(
                f"ack on {topic}: {error.code().name}: {error.details()}"
            ) from None
        if answer.status.code == Code.OK:
            return [""] * len(messages)
        by_id = {
            entry.message_id: f"{Code.Name(entry.status.code)}: {entry.status.message}"
            for entry in answer.entries
            if entry.status.code != Code.OK
        }
        overall = f"{Code.Name(answer.status.code)}: {answer.status.message}"
        if answer.status.code != Code.MULTIPLE_RESULTS:
            return [overall] * len(messages)
        return [by_id.get(message.message_id, "") for message in messages]

    async def change_invisible(self, delivery: Delivery, *, seconds: float) -> None:
        """Hide the message `seconds` more from now; its receipt handle changes (the ack and
        later changes use the new one)."""
        message: Any = delivery.handle
        consumer = self._client()
        stub = self._messaging()
        request = ChangeInvisibleDurationRequest()
        request.topic.name = str(message.topic)
        request.topic.resource_namespace = self._config.namespace
        request.group.name = self._group
        request.group.resource_namespace = self._config.namespace
        request.receipt_handle = message.receipt_handle
        request.invisible_duration.seconds = max(0, round(seconds))
        request.message_id = message.message_id
        what = f"change invisible duration on {self._topic}"
        try:
            answer = await stub.ChangeInvisibleDuration(
                request, metadata=consumer.sign(), timeout=float(self._config.request_timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise BrokerUnavailable(f"{what}: {error.code().name}: {error.details()}") from None
        if answer.status.code != Code.OK:
            raise BrokerUnavailable(
                f"{what}: {Code.Name(answer.status.code)}: {answer.status.message}"
            )
        message.receipt_handle = answer.receipt_handle

    async def close(self) -> None:
        await self._acks.close()
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        if self._consumer is not None:
            await asyncio.to_thread(_shutdown_quietly, self._consumer)
            self._consumer = None


def _messaging_stub(config: Any) -> tuple[grpc.aio.Channel, Any]:
    """Our own channel to the proxy (the official client's options) and its messaging stub."""
    channel = grpc.aio.insecure_channel(config.rpc_endpoints.facade, options=_CHANNEL_OPTIONS)
    return channel, MessagingServiceStub(channel)


def _delivery(message: Any) -> Delivery:
    keys = sorted(message.keys or [])
    return Delivery(
        body=bytes(message.body),
        message_id=str(message.message_id),
        attempt=int(message.delivery_attempt or 1),
        key=keys[0] if keys else "",
        handle=message,
        properties=dict(message.properties or {}),
    )
