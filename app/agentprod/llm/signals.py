"""The model-side signals of a consumer group, for the operator's scaler (Redis).

Every worker of a pipeline adds, per `BUCKET_SECONDS` bucket, the model calls that succeeded
(`ok`, their `call_ms` and `tokens`), those the provider refused with 429/503 (`throttled`)
and those the own requests/tokens-per-minute limiter refused (`limited`). The operator sums the
newest buckets (`read`): throttled or limited calls mean more workers would only produce more
refusals, so it caps the replicas (reason ProviderLimited). Best effort: a Redis error is
logged, never a failed task.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from agentprod import keys
from agentprod.llm import counters

BUCKET_SECONDS = 5
TTL_SECONDS = 300
FIELDS = ("ok", "throttled", "limited", "call_ms", "tokens")


@dataclasses.dataclass(frozen=True)
class Totals:
    """The signals summed over the `window_seconds` before a reading."""

    window_seconds: float
    ok: int = 0
    throttled: int = 0
    limited: int = 0
    call_seconds: float = 0.0
    tokens: int = 0


def bucket_of(now: float) -> int:
    return int(now // BUCKET_SECONDS)


class ProviderSignals:
    """What one worker adds to its group's buckets."""

    def __init__(self, client: Any, *, group: str) -> None:
        self._counters = counters.CounterWriter(client)
        self.group = group

    async def ok(self, *, call_ms: float, tokens: int | None, now: float | None = None) -> None:
        await self._add(self.ok_writes(call_ms=call_ms, tokens=tokens, now=now))

    def ok_writes(
        self, *, call_ms: float, tokens: int | None, now: float | None = None
    ) -> list[counters.Write]:
        """The writes of `ok`, for a caller that sends them with its own (one round trip)."""
        return self._writes({"ok": 1, "call_ms": call_ms, "tokens": tokens or 0}, now)

    async def throttled(self, now: float | None = None) -> None:
        await self._add(self._writes({"throttled": 1}, now))

    async def limited(self, now: float | None = None) -> None:
        await self._add(self._writes({"limited": 1}, now))

    def _writes(self, fields: dict[str, float], now: float | None) -> list[counters.Write]:
        key = keys.llm_signals(self.group, bucket_of(time.time() if now is None else now))
        increments: list[counters.Write] = [
            counters.Increment(key, name, amount) for name, amount in fields.items()
        ]
        return [*increments, counters.Expire(key, TTL_SECONDS)]

    async def _add(self, writes: list[counters.Write]) -> None:
        await self._counters.apply(writes, what="provider signal")


async def read(client: Any, *, group: str, now: float, window_seconds: float) -> Totals:
    """The signals of the whole buckets of the `window_seconds` before `now`.

    The current (partial) bucket is left out, so a reading never sees half a bucket; raises
    what the Redis client raises (the caller treats that as unknown).
    """
    buckets = max(1, math.ceil(window_seconds / BUCKET_SECONDS))
    newest = bucket_of(now) - 1
    async with client.pipeline(transaction=False) as pipe:
        for bucket in range(newest - buckets + 1, newest + 1):
            pipe.hmget(keys.llm_signals(group, bucket), list(FIELDS))
        rows = await pipe.execute()
    sums = dict.fromkeys(FIELDS, 0.0)
    for row in rows:
        for name, value in zip(FIELDS, row, strict=True):
            if value is not None:
                sums[name] += float(value.decode() if isinstance(value, bytes) else value)
    return Totals(
        window_seconds=buckets * BUCKET_SECONDS,
        ok=int(sums["ok"]),
        throttled=int(sums["throttled"]),
        limited=int(sums["limited"]),
        call_seconds=sums["call_ms"] / 1000,
        tokens=int(sums["tokens"]),
    )
