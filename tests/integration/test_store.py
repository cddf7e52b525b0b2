"""The task store's atomic transitions on a real Redis.

Cases: create + idempotency (replay, fingerprint mismatch, unconfirmed), unsent records are
invisible and discardable; claim → busy for others → reclaim after lease expiry; only the owner
finishes or releases; finished tasks are never claimed again; in-flight counts live leases.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
from agentprod import store as stores
from agentprod.models import ClaimOutcome, TaskRecord, TaskStatus
from agentprod.store import TaskStore
from harness.redis import RedisServer


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[TaskStore]:
    task_store = TaskStore(stores.connect(redis_server.url), group=f"G{uuid.uuid4().hex[:6]}")
    yield task_store
    await task_store.close()


def record() -> TaskRecord:
    return TaskRecord(
        task_id=str(uuid.uuid4()),
        user_id="u1",
        content="机械键盘降价了",
        metadata={"a": [1, 2]},
        status=TaskStatus.QUEUED,
        created_at=time.time(),
    )


async def test_created_record_is_shown_queued_and_confirm_extends_it(
    store: TaskStore, redis_client: redis.Redis
) -> None:
    """An unconfirmed record reads as queued (a client only knows its id after the send, so a
    failed confirm must not turn a 202 into 404s); the confirm gives it its full TTL."""
    task = record()
    created = await store.create(task, ttl_seconds=60)
    assert created.created
    unconfirmed = await store.get(task.task_id)
    assert unconfirmed is not None
    assert unconfirmed.status is TaskStatus.QUEUED
    await store.confirm_sent(task.task_id, ttl_seconds=3600)
    assert redis_client.ttl(f"agentprod:task:{task.task_id}") > 60
    seen = await store.get(task.task_id)
    assert seen is not None
    assert (seen.status, seen.content, seen.metadata) == (
        TaskStatus.QUEUED,
        task.content,
        {"a": [1, 2]},
    )


async def test_idempotency_replay_mismatch_and_in_progress(store: TaskStore) -> None:
    first, second = record(), record()
    key = f"k-{uuid.uuid4().hex}"
    assert (await store.create(first, ttl_seconds=60, idempotency=(key, "fp1", 60))).created
    pending = await store.create(second, ttl_seconds=60, idempotency=(key, "fp1", 60))
    assert (pending.created, pending.task_id, pending.confirmed) == (False, first.task_id, False)
    await store.confirm_sent(first.task_id, ttl_seconds=60)
    replay = await store.create(second, ttl_seconds=60, idempotency=(key, "fp1", 60))
    assert (replay.task_id, replay.confirmed, replay.fingerprint_matches) == (
        first.task_id,
        True,
        True,
    )
    mismatch = await store.create(second, ttl_seconds=60, idempotency=(key, "fp2", 60))
    assert not mismatch.fingerprint_matches
    assert await store.get(second.task_id) is None  # never written


async def test_discard_unsent_frees_the_idempotency_key(store: TaskStore) -> None:
    task = record()
    key = f"k-{uuid.uuid4().hex}"
    await store.create(task, ttl_seconds=60, idempotency=(key, "fp", 60))
    assert await store.discard_unsent(
        task.task_id, tenant=task.tenant, user_id="u1", idempotency_key=key
    )
    again = record()
    assert (await store.create(again, ttl_seconds=60, idempotency=(key, "fp", 60))).created


async def test_claim_lease_expiry_and_ownership(store: TaskStore) -> None:
    task = record()
    await store.create(task, ttl_seconds=60)
    now = time.time()
    first = await store.claim(task.task_id, owner="w1", now=now, lease_seconds=10)
    assert (first.outcome, first.attempts) == (ClaimOutcome.CLAIMED, 1)
    assert await store.in_flight(now=now) == 1
    busy = await store.claim(task.task_id, owner="w2", now=now + 5, lease_seconds=10)
    assert busy.outcome is ClaimOutcome.BUSY
    assert busy.lease_until == pytest.approx(now + 10, abs=0.01)
    # w1 died: after its lease w2 takes over, and w1 can no longer settle the task.
    second = await store.claim(task.task_id, owner="w2", now=now + 11, lease_seconds=10)
    assert (second.outcome, second.attempts) == (ClaimOutcome.CLAIMED, 2)
    assert not await store.renew(task.task_id, owner="w1", now=now + 12, lease_seconds=10)
    assert not await store.finish(
        task.task_id,
        owner="w1",
        status=TaskStatus.DONE,
        result=1,
        error=None,
        now=now + 12,
        ttl_seconds=60,
    )
    assert await store.finish(
        task.task_id,
        owner="w2",
        status=TaskStatus.DONE,
        result={"ok": True},
        error=None,
        now=now + 12,
        ttl_seconds=60,
    )
    assert await store.in_flight(now=now + 12) == 0
    done = await store.get(task.task_id)
    assert done is not None
    assert (done.status, done.result, done.attempts) == (TaskStatus.DONE, {"ok": True}, 2)
    again = await store.claim(task.task_id, owner="w3", now=now + 13, lease_seconds=10)
    assert (again.outcome, again.result_published) == (ClaimOutcome.FINISHED, False)
    await store.mark_published(task.task_id)
    published = await store.claim(task.task_id, owner="w3", now=now + 14, lease_seconds=10)
    assert published.result_published


async def test_release_puts_the_task_back_with_its_error(store: TaskStore) -> None:
    task = record()
    await store.create(task, ttl_seconds=60)
    now = time.time()
    await store.claim(task.task_id, owner="w1", now=now, lease_seconds=10)
    assert not await store.release(task.task_id, owner="other", error="x")
    assert await store.release(task.task_id, owner="w1", error="boom")
    back = await store.get(task.task_id)
    assert back is not None
    assert (back.status, back.error, back.attempts) == (TaskStatus.QUEUED, "boom", 1)
    retry = await store.claim(task.task_id, owner="w2", now=now + 1, lease_seconds=10)
    assert (retry.outcome, retry.attempts) == (ClaimOutcome.CLAIMED, 2)


async def test_finished_record_expires_after_the_result_ttl(store: TaskStore) -> None:
    task = record()
    await store.create(task, ttl_seconds=600)
    now = time.time()
    await store.claim(task.task_id, owner="w", now=now, lease_seconds=10)
    await store.finish(
        task.task_id,
        owner="w",
        status=TaskStatus.FAILED,
        result=None,
        error="bad",
        now=now,
        ttl_seconds=1,
    )
    failed = await store.get(task.task_id)
    assert failed is not None
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "bad")
    await asyncio.sleep(1.2)
    assert await store.get(task.task_id) is None


async def test_more_concurrent_calls_than_pooled_connections_wait_not_fail(
    redis_server: RedisServer,
) -> None:
    """A worker at WORKER_CONCURRENCY 1024 issues more concurrent commands than the pool holds:
    they queue for a connection instead of failing with "Too many connections" (redis-py's
    default pool), which paused receiving and handed tasks back."""
    client = stores.connect(redis_server.url)
    try:
        calls = stores.POOL_MAX_CONNECTIONS * 3
        answers = await asyncio.gather(
            *(client.blpop([f"bench:none:{i}"], timeout=0.1) for i in range(calls))
        )
        assert answers == [None] * calls
    finally:
        await client.aclose()
