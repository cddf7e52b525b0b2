"""Cache storage, rate limits and the ledger on an in-process Redis (fakeredis with Lua).

Cases: a hit counts and refreshes LRU order; writes over the bound evict the least recently
used; TTL applies; stats add up; the RPM limit refuses with the wait to the next window and
the token estimate is settled; the ledger sums calls, tokens and cost per model.
"""

from typing import Any

import fakeredis
import pytest
from agentprod import keys
from agentprod.llm import caching, counters, limits
from agentprod.llm.client import Completion
from agentprod.llm.costs import Usage
from agentprod.llm.ledger import Ledger
from agentprod.llm.signals import ProviderSignals


@pytest.fixture
def redis_client() -> fakeredis.FakeAsyncRedis:
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


def completion(text: str) -> Completion:
    return Completion(
        text=text, model="m", usage=Usage(3, 4), latency_ms=12.5, finish_reason="stop"
    )


async def test_cache_hits_misses_and_lru_eviction(redis_client: fakeredis.FakeAsyncRedis) -> None:
    cache = caching.ResponseCache(redis_client, ttl_seconds=60, max_entries=2)
    assert await cache.get("a") is None
    await cache.put("a", completion("A"))
    await cache.put("b", completion("B"))
    hit = await cache.get("a")  # a is now more recent than b
    assert hit == completion("A")
    await cache.put("c", completion("C"))  # over the bound: b goes
    assert await cache.get("b") is None
    assert (await cache.get("a")) is not None
    assert (await cache.get("c")) is not None
    stats = await cache.stats()
    assert (stats.hits, stats.misses, stats.writes, stats.evictions) == (3, 2, 3, 1)
    assert stats.entries == 2
    assert stats.hit_rate == 0.6
    ttl = await redis_client.ttl(keys.llm_cache_prefix() + "a")
    assert 0 < ttl <= 60


async def test_cache_disabled_and_broken_redis_are_misses() -> None:
    off = caching.ResponseCache(fakeredis.FakeAsyncRedis(), ttl_seconds=0, max_entries=5)
    await off.put("a", completion("A"))
    assert await off.get("a") is None

    class Broken:
        def register_script(self, script: str) -> object:
            async def fail(**_: object) -> object:
                raise ConnectionError("redis down")

            return fail

    broken = caching.ResponseCache(Broken(), ttl_seconds=60, max_entries=5)
    await broken.put("a", completion("A"))  # logged, not raised
    assert await broken.get("a") is None


async def test_rpm_limit_refuses_with_the_wait(redis_client: fakeredis.FakeAsyncRedis) -> None:
    limiter = limits.RateLimiter(redis_client, rpm=2, tpm=0)
    now = 1_800_000_010.0  # 10 s into a minute window
    await limiter.reserve("m", tokens=5, now=now)
    await limiter.reserve("m", tokens=5, now=now)
    with pytest.raises(limits.RateLimited) as refused:
        await limiter.reserve("m", tokens=5, now=now)
    assert refused.value.after_seconds == 50
    await limiter.reserve("other-model", tokens=5, now=now)  # limits are per model
    await limiter.reserve("m", tokens=5, now=now + 60)  # next window


async def test_tpm_limit_and_settle(redis_client: fakeredis.FakeAsyncRedis) -> None:
    limiter = limits.RateLimiter(redis_client, rpm=0, tpm=100)
    now = 1_800_000_000.0
    first = await limiter.reserve("m", tokens=90, now=now)
    await limiter.settle(first, used_tokens=20)  # the estimate was high
    second = await limiter.reserve("m", tokens=70, now=now)
    with pytest.raises(limits.RateLimited):
        await limiter.reserve("m", tokens=30, now=now)
    assert second.tokens == 70
    window = await redis_client.hgetall(keys.llm_rate("m", limits.window_of(now)))
    assert window == {b"requests": b"2", b"tokens": b"90"}


def test_estimate_tokens() -> None:
    assert limits.estimate_tokens([{"role": "user", "content": "x" * 40}], 16) == 27


async def test_ledger_sums_per_model(redis_client: fakeredis.FakeAsyncRedis) -> None:
    ledger = Ledger(redis_client)
    await ledger.call("m", usage=Usage(10, 5), cost_usd=0.001, latency_ms=100)
    await ledger.call("m", usage=None, cost_usd=None, latency_ms=300)
    await ledger.cache_hit("m")
    await ledger.error("n", "ProviderTransient")
    totals = await ledger.read()
    assert totals["m"]["calls"] == 2
    assert totals["m"]["calls_without_usage"] == 1
    assert totals["m"]["prompt_tokens"] == 10
    assert totals["m"]["total_tokens"] == 15
    assert totals["m"]["cost_usd"] == 0.001
    assert totals["m"]["cache_hits"] == 1
    assert totals["m"]["mean_latency_ms"] == 200
    assert totals["n"]["errors"] == 1


async def test_a_call_writes_its_ledger_and_signals_in_one_round_trip(
    redis_client: fakeredis.FakeAsyncRedis,
) -> None:
    signals = ProviderSignals(redis_client, group="g")
    commands: list[str] = []
    real_pipeline, real_evalsha = redis_client.pipeline, redis_client.evalsha

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        commands.append("pipeline")
        return real_pipeline(*args, **kwargs)

    async def evalsha(*args: Any, **kwargs: Any) -> Any:
        commands.append("evalsha")
        return await real_evalsha(*args, **kwargs)

    redis_client.pipeline = pipeline  # type: ignore[method-assign]
    redis_client.evalsha = evalsha  # type: ignore[method-assign]
    ledger = Ledger(redis_client)
    await ledger.call("warm-up", usage=None, cost_usd=None, latency_ms=1.0)  # loads the script
    commands.clear()
    writes = signals.ok_writes(call_ms=250.5, tokens=7, now=1000.0)
    await ledger.call("m", usage=Usage(3, 4), cost_usd=None, latency_ms=250.5, also=writes)
    assert commands == ["evalsha"]  # one command: the ledger's fields and the signals
    bucket = keys.llm_signals("g", 1000 // 5)
    assert await redis_client.hgetall(bucket) == {
        b"ok": b"1",
        b"call_ms": b"250.5",
        b"tokens": b"7",
    }
    assert 0 < await redis_client.ttl(bucket) <= 300
    assert (await Ledger(redis_client).read())["m"]["calls"] == 1


async def test_counter_writes_are_best_effort() -> None:
    class Down:
        def register_script(self, _: str) -> object:
            async def run(**_: object) -> object:
                raise ConnectionError("redis is down")

            return run

    writer = counters.CounterWriter(Down())
    await writer.apply([counters.Increment("k", "f", 1)], what="test")  # no raise


def test_the_script_gets_each_write_as_its_key_and_three_arguments() -> None:
    keys_, args = counters.script_arguments(
        [
            counters.Increment("a", "calls", 1),
            counters.Increment("a", "latency_ms", 12.5),
            counters.Expire("b", 300),
        ]
    )
    assert keys_ == ["a", "a", "b"]
    assert args == ["i", "calls", 1, "f", "latency_ms", "12.5", "e", 300, ""]


async def test_counter_writes_add_up_and_expire(redis_client: fakeredis.FakeAsyncRedis) -> None:
    writer = counters.CounterWriter(redis_client)
    writes: list[counters.Write] = [
        counters.Increment("h", "n", 2),
        counters.Increment("h", "ms", 0.25),
        counters.Expire("h", 60),
    ]
    await writer.apply(writes, what="test")
    await writer.apply(writes, what="test")
    assert await redis_client.hgetall("h") == {b"n": b"4", b"ms": b"0.5"}
    assert 0 < await redis_client.ttl("h") <= 60
