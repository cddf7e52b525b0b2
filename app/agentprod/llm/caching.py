"""The response cache: shared by all workers in Redis, TTL per entry, bounded with LRU eviction.

The key (`cache_key`, pure) is a SHA-256 over the canonical JSON of everything that changes the
output — tenant, model, every message (the system prompt included), tools, tool choice,
sampling parameters, max tokens, response format, seed and the prompt version — not the seed's
MD5 of query + model, which served answers made under other settings. Only deterministic
requests (temperature 0) are cached unless the caller opts in (`cacheable`).

Storage (`ResponseCache`): each entry is a string with a TTL; a sorted set orders the entries
by last use (scored by a logical clock, `tick` in the stats hash, so the order is exact), and
a write that takes the set over `max_entries` evicts the least recently used.
Hits, misses, writes and evictions are counted in one hash for `GET /cache/stats`. The cache is
best effort: a Redis error is a miss (logged), never a failed call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import orjson

from agentprod import keys
from agentprod.llm.client import ChatRequest, Completion

log = logging.getLogger(__name__)

_GET = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[3], 'tick', 1), ARGV[1])
  redis.call('HINCRBY', KEYS[3], 'hits', 1)
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[3], 'misses', 1)
end
return value
"""

_SET = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[3], 'tick', 1), ARGV[3])
redis.call('HINCRBY', KEYS[3], 'writes', 1)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', ARGV[5] .. oldest[i]) end
  redis.call('HINCRBY', KEYS[3], 'evictions', over)
end
return over
"""


def cache_key(request: ChatRequest, *, tenant: str, prompt_version: str) -> str:
    """Hex SHA-256 over everything that changes the completion."""
    material = {
        "v": 1,
        "tenant": tenant,
        "prompt_version": prompt_version,
        **request.body(),
    }
    canonical = orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def cacheable(request: ChatRequest, *, opt_in: bool) -> bool:
    """Deterministic requests are cached; others only when the caller asks for it."""
    return opt_in or request.temperature == 0


@dataclasses.dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    writes: int
    evictions: int
    entries: int
    max_entries: int
    ttl_seconds: int

    @property
    def hit_rate(self) -> float | None:
        lookups = self.hits + self.misses
        return round(self.hits / lookups, 4) if lookups else None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"hit_rate": self.hit_rate}


class ResponseCache:
    """Completions by `cache_key` in Redis (the client is passed in: real or fakeredis)."""

    def __init__(self, client: Any, *, ttl_seconds: int, max_entries: int) -> None:
        self._redis = client
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._get = client.register_script(_GET)
        self._set = client.register_script(_SET)

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    async def get(self, digest: str) -> Completion | None:
        if not self.enabled:
            return None
        try:
            raw = await self._get(
                keys=[
                    keys.llm_cache_prefix() + digest,
                    keys.llm_cache_lru(),
                    keys.llm_cache_stats(),
                ],
                args=[digest],
            )
        except Exception as error:  # best effort: any Redis failure is a miss
            log.warning("response cache read failed (treated as a miss): %s", error)
            return None
        if raw is None:
            return None
        try:
            return Completion.from_json(orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None

    async def put(self, digest: str, completion: Completion) -> None:
        if not self.enabled:
            return
        try:
            await self._set(
                keys=[
                    keys.llm_cache_prefix() + digest,
                    keys.llm_cache_lru(),
                    keys.llm_cache_stats(),
                ],
                args=[
                    orjson.dumps(completion.as_json()),
                    self.ttl_seconds,
                    digest,
                    self.max_entries,
                    keys.llm_cache_prefix(),
                ],
            )
        except Exception as error:
            log.warning("response cache write failed: %s", error)

    async def stats(self) -> CacheStats:
        counters = await self._redis.hgetall(keys.llm_cache_stats())
        entries = await self._redis.zcard(keys.llm_cache_lru())
        values = {_text(k): int(v) for k, v in counters.items()}  # `tick` is not shown
        return CacheStats(
            hits=values.get("hits", 0),
            misses=values.get("misses", 0),
            writes=values.get("writes", 0),
            evictions=values.get("evictions", 0),
            entries=int(entries),
            max_entries=self.max_entries,
            ttl_seconds=self.ttl_seconds,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
