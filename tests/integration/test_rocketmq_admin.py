"""The operator's RocketMQ admin client against a real RocketMQ 5.3.3, cross-checked with mqadmin.

Cases: topic create (8 queues, NORMAL) -> route, config, `mqadmin topicList/topicRoute` agree;
update to 16 queues and to FIFO apply; delete -> no route, not in `topicList`. Group create
(retryMaxTimes 3) -> our config and `mqadmin getConsumerConfig` agree; update; delete -> gone.
Lag: N messages before any consumer -> lag N (= max offsets total, = `mqadmin consumerProgress`
Diff total); a SimpleConsumer receives and acks k -> lag N - k, again equal to mqadmin's.
Unreachable name server -> RemotingUnavailable naming it; signed requests work (auth off);
missing topic -> TOPIC_NOT_EXIST. Dead letters: 0 before the %DLQ% topic exists; a group
with no retries and a consumer that never acks -> both messages counted in %DLQ%<group>.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from agentprod_operator import specs
from agentprod_operator.rocketmq import models, remoting
from agentprod_operator.rocketmq.admin import RocketMQAdmin
from agentprod_operator.scaling import sampling
from agentprod_operator.scaling.sampling import dead_letters
from harness.rocketmq import CLUSTER, RocketMQ
from rocketmq import (
    ClientConfiguration,
    Credentials,
    FilterExpression,
    Message,
    Producer,
    SimpleConsumer,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(rocketmq: RocketMQ) -> AsyncIterator[RocketMQAdmin]:
    async with RocketMQAdmin(name_servers=rocketmq.namesrv_addr) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def mqadmin_topics(rocketmq: RocketMQ) -> set[str]:
    return set(rocketmq.mqadmin("topicList").split())


def mqadmin_diff_total(rocketmq: RocketMQ, *, group: str, topic: str) -> int:
    output = rocketmq.mqadmin("consumerProgress", "-g", group, "-t", topic)
    match = re.search(r"Consume Diff Total:\s*(-?\d+)", output)
    assert match, output
    return int(match.group(1))


# --------------------------------------------------------------------------- topics


async def test_topic_create_update_delete(admin: RocketMQAdmin, rocketmq: RocketMQ) -> None:
    topic = unique("AdminTopic")
    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=8)

    route = await admin.topic_route(topic)  # brokers register before answering: no waiting
    assert route is not None
    assert (route.read_queues, route.write_queues) == (8, 8)
    assert route.master_addrs() == (rocketmq.broker_addr,)
    config = await admin.topic_config(topic)
    assert config is not None
    assert (config.read_queues, config.write_queues, config.perm) == (8, 8, 6)
    assert config.message_type == "NORMAL"
    assert config.broker_names == ("broker-a",)

    assert topic in mqadmin_topics(rocketmq)
    route_output = rocketmq.mqadmin("topicRoute", "-t", topic)
    assert re.findall(r'"(read|write)QueueNums":(\d+)', route_output) == [
        ("read", "8"), ("write", "8"),
    ]  # fmt: skip

    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=16)
    route = await admin.topic_route(topic)
    assert route is not None
    assert (route.read_queues, route.write_queues) == (16, 16)
    offsets = await admin.max_offsets(topic)
    assert offsets is not None
    assert (len(offsets.queues), offsets.total) == (16, 0)

    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=16, message_type="FIFO")
    config = await admin.topic_config(topic)
    assert config is not None
    assert (config.message_type, config.read_queues) == ("FIFO", 16)

    await admin.delete_topic(cluster=CLUSTER, topic=topic)
    assert await admin.topic_route(topic) is None
    assert await admin.topic_config(topic) is None
    assert await admin.max_offsets(topic) is None
    assert topic not in mqadmin_topics(rocketmq)
    await admin.delete_topic(cluster=CLUSTER, topic=topic)  # deleting again is fine


async def test_fifo_topic_created_directly(admin: RocketMQAdmin) -> None:
    topic = unique("AdminFifo")
    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=2, message_type="FIFO")
    config = await admin.topic_config(topic)
    assert config is not None
    assert (config.message_type, config.attributes) == ("FIFO", {"message.type": "FIFO"})
    await admin.delete_topic(cluster=CLUSTER, topic=topic)


# --------------------------------------------------------------------------- groups


async def test_group_create_update_delete(admin: RocketMQAdmin, rocketmq: RocketMQ) -> None:
    group = unique("GID_Admin")
    assert await admin.group_config(group) is None
    await admin.create_or_update_group(cluster=CLUSTER, group=group, max_retries=3)

    config = await admin.group_config(group)
    assert config is not None
    assert (config.retry_max_times, config.orderly, config.retry_policy) == (3, False, None)
    assert config.broker_names == ("broker-a",)
    output = rocketmq.mqadmin("getConsumerConfig", "-g", group)
    assert re.search(r"retryMaxTimes\s*=\s*3\b", output), output

    policy = models.ExponentialRetry(initial_ms=1_000, max_ms=60_000, multiplier=3)
    await admin.create_or_update_group(
        cluster=CLUSTER, group=group, max_retries=5, retry_policy=policy, orderly=True
    )
    config = await admin.group_config(group)
    assert config is not None
    assert (config.retry_max_times, config.orderly, config.retry_policy) == (5, True, policy)

    await admin.delete_group(cluster=CLUSTER, group=group)
    assert await admin.group_config(group) is None
    await admin.delete_group(cluster=CLUSTER, group=group)  # deleting again is fine


# --------------------------------------------------------------------------- lag


def publish(*, endpoint: str, topic: str, count: int) -> None:
    producer = Producer(
        ClientConfiguration(endpoint, Credentials("", ""), request_timeout=3), (topic,)
    )
    producer.startup()
    try:
        for i in range(count):
            message = Message()
            message.topic = topic
            message.body = f"message {i}".encode()
            producer.send(message)
    finally:
        producer.shutdown()


def receive_and_ack(*, endpoint: str, group: str, topic: str, count: int) -> int:
    """Receive up to ``count`` messages (asking for no more than are missing), ack each."""
    config = ClientConfiguration(endpoint, Credentials("", ""), request_timeout=3)
    consumer = SimpleConsumer(config, group, {topic: FilterExpression()}, await_duration=3)
    consumer.startup()
    received = 0
    deadline = time.monotonic() + 60
    try:
        while received < count and time.monotonic() < deadline:
            try:
                messages = consumer.receive(count - received, 30)
            except Exception:  # the first receive after start can fail with a transient NPE
                time.sleep(1)
                continue
            for message in messages:
                consumer.ack(message)
            received += len(messages)
    finally:
        consumer.shutdown()
    return received


async def wait_for_lag(admin: RocketMQAdmin, *, group: str, topic: str, lag: int) -> int:
    """The group's lag once it equals ``lag`` (offsets are committed asynchronously), or the
    last value seen after 15 s.
    """
    deadline = time.monotonic() + 15
    while True:
        stats = await admin.consume_stats(group=group, topic=topic)
        if stats.lag == lag or time.monotonic() > deadline:
            return stats.lag
        await asyncio.sleep(0.2)


async def test_lag_before_and_after_consuming(admin: RocketMQAdmin, rocketmq: RocketMQ) -> None:
    topic, group = unique("AdminLag"), unique("GID_AdminLag")
    published, to_consume = 12, 5
    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=4)
    await admin.create_or_update_group(cluster=CLUSTER, group=group, max_retries=3)

    await asyncio.to_thread(publish, endpoint=rocketmq.endpoint, topic=topic, count=published)
    offsets = await admin.max_offsets(topic)
    assert offsets is not None
    assert offsets.total == published

    stats = await admin.consume_stats(group=group, topic=topic)  # nobody consumed yet
    assert stats.lag == stats.topic_lag == published
    assert stats.retry_lag == 0
    assert {q.consumer_offset for q in stats.queues} == {0}
    assert mqadmin_diff_total(rocketmq, group=group, topic=topic) == published

    received = await asyncio.to_thread(
        receive_and_ack, endpoint=rocketmq.endpoint, group=group, topic=topic, count=to_consume
    )
    assert received == to_consume
    lag = await wait_for_lag(admin, group=group, topic=topic, lag=published - received)
    assert lag == published - received
    assert mqadmin_diff_total(rocketmq, group=group, topic=topic) == lag

    await admin.delete_group(cluster=CLUSTER, group=group)
    await admin.delete_topic(cluster=CLUSTER, topic=topic)


async def test_the_scaler_counts_the_lag_of_both_request_topics(
    admin: RocketMQAdmin, rocketmq: RocketMQ
) -> None:
    """The autoscaler's sample sums the backlog of `<request>` and `<request>-high`."""
    topic, group = unique("AdminPrio"), unique("GID_AdminPrio")
    spec = specs.AgentPipelineSpec.model_validate(
        {
            "rocketmq": {"nameServer": rocketmq.namesrv_addr, "endpoint": rocketmq.endpoint},
            "topics": {"request": {"name": topic}, "result": {"name": f"{topic}_result"}},
            "consumerGroup": {"name": group},
            "redis": {"url": "redis://127.0.0.1:1/0"},
            "worker": {"image": "agentprod:test"},
        }
    )
    assert spec.topics.priority.name == f"{topic}-high"
    for made in (spec.topics.request, spec.topics.priority):
        await admin.create_or_update_topic(cluster=CLUSTER, topic=made.name, queues=2)
    await admin.create_or_update_group(cluster=CLUSTER, group=group, max_retries=3)
    await asyncio.to_thread(publish, endpoint=rocketmq.endpoint, topic=topic, count=4)
    await asyncio.to_thread(
        publish, endpoint=rocketmq.endpoint, topic=spec.topics.priority.name, count=3
    )
    sample = await sampling.read_sample(
        client=admin, store=None, spec=spec, readings=sampling.Readings(), now=time.time()
    )
    assert sample.lag == 4 + 3
    for made in (spec.topics.request, spec.topics.priority):
        await admin.delete_topic(cluster=CLUSTER, topic=made.name)
    await admin.delete_group(cluster=CLUSTER, group=group)


async def test_consume_stats_of_a_missing_topic(admin: RocketMQAdmin) -> None:
    with pytest.raises(remoting.RemotingError) as caught:
        await admin.consume_stats(group="GID_nobody", topic=unique("Missing"))
    assert caught.value.code == remoting.ResponseCode.TOPIC_NOT_EXIST


# --------------------------------------------------------------------------- connections


async def test_unreachable_name_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{sock.getsockname()[1]}"
    async with RocketMQAdmin(name_servers=addr, timeout=2) as admin:
        with pytest.raises(remoting.RemotingUnavailable, match=re.escape(addr)) as caught:
            await admin.topic_route("AnyTopic")
    assert "GET_ROUTEINFO_BY_TOPIC" in str(caught.value)


async def test_second_name_server_answers_when_the_first_is_down(rocketmq: RocketMQ) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    servers = f"{dead}; {rocketmq.namesrv_addr}"
    async with RocketMQAdmin(name_servers=servers, timeout=2) as admin:
        info = await admin.cluster_info()
    assert info.master_addrs(CLUSTER) == (rocketmq.broker_addr,)


async def test_signed_requests_work_with_auth_off(rocketmq: RocketMQ) -> None:
    topic, group = unique("AdminSigned"), unique("GID_AdminSigned")
    async with RocketMQAdmin(
        name_servers=rocketmq.namesrv_addr, access_key="operator", secret_key="s3cr3t"
    ) as admin:
        await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=2)
        await admin.create_or_update_group(cluster=CLUSTER, group=group, max_retries=1)
        assert (await admin.consume_stats(group=group, topic=topic)).lag == 0
        assert await admin.group_config(group) is not None
        await admin.delete_group(cluster=CLUSTER, group=group)
        await admin.delete_topic(cluster=CLUSTER, topic=topic)
        assert await admin.topic_route(topic) is None


# --------------------------------------------------------------------------- dead letters


def receive_never_ack(*, endpoint: str, group: str, topic: str, seconds: float) -> int:
    """Keep receiving for ``seconds`` and never ack: a consumer that always fails."""
    config = ClientConfiguration(endpoint, Credentials("", ""), request_timeout=3)
    consumer = SimpleConsumer(config, group, {topic: FilterExpression()}, await_duration=2)
    consumer.startup()
    deliveries = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                deliveries += len(consumer.receive(16, 10))
            except Exception:  # the first receive after start can fail with a transient NPE
                time.sleep(1)
    finally:
        consumer.shutdown()
    return deliveries


async def test_dead_letters_count_what_exhausted_its_retries(
    admin: RocketMQAdmin, rocketmq: RocketMQ
) -> None:
    topic, group = unique("AdminDlq"), unique("GID_AdminDlq")
    await admin.create_or_update_topic(cluster=CLUSTER, topic=topic, queues=1)
    await admin.create_or_update_group(cluster=CLUSTER, group=group, max_retries=0)
    assert await dead_letters(admin, group=group) == 0  # no %DLQ% topic yet

    await asyncio.to_thread(publish, endpoint=rocketmq.endpoint, topic=topic, count=2)
    receiving = asyncio.create_task(
        asyncio.to_thread(
            receive_never_ack, endpoint=rocketmq.endpoint, group=group, topic=topic, seconds=60
        )
    )
    deadline = time.monotonic() + 60
    dead = 0
    while dead != 2 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        dead = await dead_letters(admin, group=group) or 0
    assert dead == 2  # no retries allowed: both went to %DLQ%<group> after one delivery
    assert await receiving >= 2
