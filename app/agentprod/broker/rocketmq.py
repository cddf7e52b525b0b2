"""RocketMQ 5 through its gRPC proxy, with the official `rocketmq-python-client`.

The client is synchronous and runs its own I/O thread; every call here goes through its future
API and `asyncio.wrap_future`, so nothing blocks the event loop. Start-up runs in a thread under
a timeout because the client can wait forever for settings when the proxy is unreachable, and a
failed client is replaced on the next use (a client cannot be restarted).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from rocketmq import (  # the client ships no type information
    ClientConfiguration,
    Credentials,
    FilterExpression,
    Message,
    Producer,
    SimpleConsumer,
)

from agentprod.broker.base import BrokerUnavailable, Delivery, Outgoing

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 20.0
RESTART_INTERVAL_SECONDS = 2.0


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
        # The client retries a send 3 times, each bounded by the request timeout.
        self._send_limit = 3.0 * config.request_timeout + 2.0
        self._endpoint = endpoint
        self._topics = topics
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._last_attempt = 0.0

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
        producer = await self._ensure()
        outgoing = Message()
        outgoing.topic = message.topic
        outgoing.body = message.body
        outgoing.keys = message.key
        outgoing.tag = message.tag
        for name, value in message.properties.items():
            outgoing.add_property(name, value)
        try:
            future = producer.send_async(outgoing)
        except Exception as error:  # refused before sending (route, message type)
            raise BrokerUnavailable(f"send to {message.topic} failed: {error}") from error
        receipt = await _settle(future, seconds=self._send_limit, what=f"send to {message.topic}")
        return str(receipt.message_id)

    async def check(self) -> None:
        if not await asyncio.to_thread(_endpoint_reachable, self._endpoint):
            raise BrokerUnavailable(f"RocketMQ proxy {self._endpoint} unreachable")
        await self._ensure()

    async def close(self) -> None:
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
        threads: int = 16,
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._group = group
        self._topic = topic
        self._await_seconds = await_seconds
        self._call_limit = float(config.request_timeout) + 2.0
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=f"rocketmq-{group}"
        )
        self._consumer: Any = None

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
        await self._call(self._client().ack, delivery.handle, what="ack")

    async def change_invisible(self, delivery: Delivery, *, seconds: float) -> None:
        whole = max(0, round(seconds))
        await self._call(
            self._client().change_invisible_duration,
            delivery.handle,
            whole,
            what="change invisible duration",
        )

    async def _call(self, method: Callable[..., Any], *args: Any, what: str) -> None:
        """Run a blocking client call on the consumer's own threads.

        The client's `ack_async`/`change_invisible_duration_async` resolve an asyncio future
        from a foreign thread (not thread-safe: the awaiting loop may never wake), so the
        blocking variants run here instead, each bounded by the request timeout.
        """
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, functools.partial(method, *args))
        try:
            await asyncio.wait_for(asyncio.shield(future), self._call_limit)
        except TimeoutError:
            raise BrokerUnavailable(
                f"{what} on {self._topic}: no answer within {self._call_limit:.0f}s"
            ) from None
        except Exception as error:
            raise BrokerUnavailable(f"{what} on {self._topic} failed: {error}") from error

    async def close(self) -> None:
        if self._consumer is not None:
            await asyncio.to_thread(_shutdown_quietly, self._consumer)
            self._consumer = None
        self._threads.shutdown(wait=False)


def _delivery(message: Any) -> Delivery:
    keys = sorted(message.keys or [])
    return Delivery(
        body=bytes(message.body),
        message_id=str(message.message_id),
        attempt=int(message.delivery_attempt or 1),
        key=keys[0] if keys else "",
        handle=message,
    )
