"""What the operator's scaler reads from Redis: the model-side signals the workers export and
the in-flight tasks per pod (for pod-deletion-cost), on a real Redis.

Cases: ok / throttled / limited calls of one group add up per bucket and `read` sums the
whole buckets of its window only (not the current, partial one, nor older ones, nor another
group's); the operator's `sampling.provider_load` turns them into the rule's `ProviderLoad`
through the pipeline's TaskStore; `LLMService.call` counts a limiter refusal as limited;
`in_flight_by_pod` counts the live leases per pod (the first part of the owner), not the
expired or finished ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agentprod import keys
from agentprod import store as stores
from agentprod.llm import caching, limits, signals
from agentprod.llm.calling import LLMService
from agentprod.llm.client import ChatRequest, ModelClient
from agentprod.llm.config import LLMSettings
from agentprod.llm.ledger import Ledger
from agentprod.models import TaskRecord, TaskStatus
from agentprod_operator import specs
from agentprod_operator.scaling import sampling
from harness.redis import RedisServer

NOW = 1_000_000.0  # bucket 200000 starts here


class GroupStore(stores.TaskStore):
    """A TaskStore that remembers its group (the operator knows it from the spec)."""

    def __init__(self, url: str, group: str) -> None:
        super().__init__(stores.connect(url), group=group)
        self.group = group


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[GroupStore]:
    task_store = GroupStore(redis_server.url, f"G{uuid.uuid4().hex}")
    yield task_store
    await task_store.close()


async def test_signals_sum_the_whole_buckets_of_the_window(store: GroupStore) -> None:
    mine = signals.ProviderSignals(store.client, group=store.group)
    other = signals.ProviderSignals(store.client, group=store.group + "x")
    for at in (NOW - 29, NOW - 12, NOW - 1):  # three buckets inside the 30 s window
        await mine.ok(call_ms=1_500.0, tokens=40, now=at)
        await mine.throttled(now=at)
    await mine.limited(now=NOW - 7)
    await mine.throttled(now=NOW - 31)  # older than the window
    await mine.throttled(now=NOW + 2)  # the current bucket: not complete yet
    await other.throttled(now=NOW - 3)  # another pipeline
    totals = await signals.read(store.client, group=store.group, now=NOW + 2, window_seconds=30)
    assert totals == signals.Totals(
        window_seconds=30, ok=3, throttled=3, limited=1, call_seconds=4.5, tokens=120
    )
    assert await store.client.ttl(keys_of(store.group, NOW - 1)) > 0  # they expire


def keys_of(group: str, at: float) -> str:
    return keys.llm_signals(group, signals.bucket_of(at))


def spec_for(group: str, **scaling: Any) -> specs.AgentPipelineSpec:
    return specs.AgentPipelineSpec.model_validate(
        {
            "rocketmq": {"nameServer": "127.0.0.1:1", "endpoint": "127.0.0.1:2"},
            "topics": {"request": {"name": "TopicReq"}, "result": {"name": "TopicRes"}},
            "consumerGroup": {"name": group},
            "redis": {"url": "redis://127.0.0.1:1/0"},
            "worker": {"image": "agentprod:test"},
            "scaling": scaling,
        }
    )


async def test_the_scaler_reads_them_through_the_task_store(store: GroupStore) -> None:
    mine = signals.ProviderSignals(store.client, group=store.group)
    for _ in range(4):
        await mine.throttled(now=NOW - 10)
    await mine.ok(call_ms=800.0, tokens=10, now=NOW - 10)
    load = await sampling.provider_load(store, spec=spec_for(store.group), now=NOW)
    assert load is not None
    assert (load.ok, load.throttled, load.refused, load.attempts) == (1, 4, 4, 5)
    assert load.window_seconds == 30
    assert load.per_minute(load.throttled) == 8
    off = spec_for(store.group, provider={"enabled": False})
    assert await sampling.provider_load(store, spec=off, now=NOW) is None


async def test_a_limiter_refusal_is_counted_as_limited(store: GroupStore) -> None:
    settings = LLMSettings(
        openai_base_url="http://127.0.0.1:9/v1",  # never reached: the limiter refuses first
        openai_api_key="test",
        llm_model_fast="fake-fast",
        llm_rpm=1,
        mq_group_agent=store.group,
    )
    client = store.client
    service = LLMService(
        settings=settings,
        client=ModelClient(settings),
        cache=caching.ResponseCache(client, ttl_seconds=0, max_entries=10),
        limiter=limits.RateLimiter(client, rpm=1, tpm=0),
        ledger=Ledger(client),
        provider_signals=signals.ProviderSignals(client, group=store.group),
    )
    model = f"m-{uuid.uuid4().hex}"
    await service.limiter.reserve(model, tokens=1)  # the minute's one request is used
    request = ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(limits.RateLimited):
        await service.call(request, tenant="t", use_cache=False)
    await service.close()
    key = keys_of(store.group, time.time())
    assert await client.hget(key, "limited") in ("1", b"1")


def task_record() -> TaskRecord:
    return TaskRecord(
        task_id=str(uuid.uuid4()),
        user_id="u1",
        content="x",
        metadata={},
        status=TaskStatus.QUEUED,
        created_at=time.time(),
    )


async def test_in_flight_by_pod_counts_live_leases_per_pod(store: GroupStore) -> None:
    now = time.time()
    owners = ["pod-a/w1/r1", "pod-a/w1/r2", "pod-b/w2/r1", "pod-c/w3/r1", "pod-d/w4/r1"]
    tasks = []
    for owner in owners:
        task = task_record()
        await store.create(task, ttl_seconds=60)
        lease = 1 if owner.startswith("pod-c") else 30  # pod-c's lease runs out
        await store.claim(task.task_id, owner=owner, now=now, lease_seconds=lease)
        tasks.append(task)
    assert await store.finish(
        tasks[4].task_id,
        owner=owners[4],
        status=TaskStatus.DONE,
        result=1,
        error=None,
        now=now,
        ttl_seconds=60,
    )
    assert await store.in_flight_by_pod(now=now + 2) == {"pod-a": 2, "pod-b": 1}
    assert await store.in_flight(now=now + 2) == 3
