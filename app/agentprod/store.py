"""Task records in Redis: create, claim, renew, finish, release — each one atomic (Lua).

Delivery is at least once, so every state change checks the record first: a claim succeeds
only for a `queued` task or a `running` one whose lease ran out (its worker died), and only the
lease owner may finish or release it. Callers are the API (create/confirm/discard/get), the
worker (claim/renew/finish/release/mark_published) and the operator's autoscaler (in_flight);
they build the client with `connect` (real Redis) or `embedded` (fakeredis for `agentprod dev`).
This is the only module that imports redis: every Redis error leaves it as `StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from agentprod import keys, store_lua
from agentprod.models import (
    JSON,
    OPEN_TENANT,
    Claim,
    ClaimOutcome,
    Created,
    Priority,
    TaskRecord,
    TaskStatus,
)
from agentprod.tenancy import ApiKey, Window

if TYPE_CHECKING:  # `limits` loads with the first RequestLimiter: only the API makes one
    from limits import RateLimitItem

#: How long a refused submission's marker lives: longer than its message could still arrive.
REFUSED_TTL_SECONDS = 24 * 3600
#: Records `count_by_status` reads per round trip.
COUNT_BATCH = 500

#: Default for how long a tenant's task index keeps an entry: the longest a record lives
#: (TASK_PENDING_TTL_SECONDS; the runtime passes the configured value).
INDEX_TTL_SECONDS = 7 * 24 * 3600

P = ParamSpec("P")
T = TypeVar("T")


class StoreUnavailable(Exception):
    """Redis could not be reached or refused the command; the API answers 503 on it."""


def _translated(call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Raise `StoreUnavailable` for any Redis error, so no caller needs to know Redis."""

    @functools.wraps(call)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await call(*args, **kwargs)
        except RedisError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    return guarded


@dataclasses.dataclass(frozen=True)
class IndexEntry:
    """One row of a tenant's task index, with the record fields a listing filters on."""

    task_id: str
    created_at: float
    status: str
    agent: str


@dataclasses.dataclass(frozen=True)
class IndexPage:
    """What one bounded read of the index found: `entries` newest first, and how many index
    rows were read (`scanned`; fewer than asked for means the range is exhausted)."""

    entries: list[IndexEntry]
    scanned: int
    last: tuple[str, float] | None = None  # the last row read (id, created_at), even if gone


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """One entry of a task's event stream: its stream id (the SSE id) and its fields."""

    event_id: str
    fields: dict[str, str]


class TaskStore:
    """Async access to task records; one instance per process."""

    def __init__(
        self, client: aioredis.Redis, *, group: str, index_ttl_seconds: int = INDEX_TTL_SECONDS
    ) -> None:
        self._redis = client
        self._index_ttl = index_ttl_seconds
        self._cancel: AsyncScript = client.register_script(store_lua.CANCEL)
        self._running_key = keys.running(group)
        self._create: AsyncScript = client.register_script(store_lua.CREATE)
        self._discard: AsyncScript = client.register_script(store_lua.DISCARD_UNSENT)
        self._claim: AsyncScript = client.register_script(store_lua.CLAIM)
        self._renew: AsyncScript = client.register_script(store_lua.RENEW)
        self._finish: AsyncScript = client.register_script(store_lua.FINISH)
        self._release: AsyncScript = client.register_script(store_lua.RELEASE)
        self._mark_published: AsyncScript = client.register_script(store_lua.MARK_PUBLISHED)
        self._recreate: AsyncScript = client.register_script(store_lua.RECREATE)
        self._settle_dead: AsyncScript = client.register_script(store_lua.SETTLE_DEAD)
        self._redrive: AsyncScript = client.register_script(store_lua.REDRIVE)
        self._dead_key = keys.dead_lettered(group)

    @_translated
    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    @_translated
    async def create(
        self,
        record: TaskRecord,
        *,
        ttl_seconds: int,
        idempotency: tuple[str, str, int] | None = None,
        max_open: int = 1_000_000_000,
        open_max_age_seconds: float = 7 * 86400,
    ) -> Created:
        """Write a new, not yet sent record; `idempotency` is (key, fingerprint, ttl).

        Refused (`over_cap`) when the tenant has `max_open` unfinished tasks already; entries
        of its open set older than `open_max_age_seconds` (the unfinished record's TTL) are
        pruned first, as their records expired without a terminal transition."""
        idem_key, fingerprint, idem_ttl = ("", "", 0)
        if idempotency:
            key, fingerprint, idem_ttl = idempotency
            idem_key = keys.idempotency(record.tenant, record.user_id, key)
        fields = _encode(record) | {"sent": "0"}
        flat = [item for pair in fields.items() for item in pair]
        answer = await self._create(
            keys=[
                keys.task(record.task_id),
                idem_key,
                keys.open_tasks(record.tenant),
                keys.tenant_tasks(record.tenant),
                keys.events(record.task_id),
            ],
            args=[
                ttl_seconds,
                idem_ttl,
                f"{record.task_id}|{fingerprint}",
                max_open,
                repr(record.created_at - open_max_age_seconds),
                repr(record.created_at),
                self._index_ttl,
                repr(record.created_at - self._index_ttl),
                *flat,
            ],
        )
        outcome, existing = (_text(part) for part in answer)
        if outcome == "created":
            return Created(task_id=record.task_id, created=True)
        if outcome == "full":
            return Created(task_id=record.task_id, created=False, over_cap=True)
        if outcome == "duplicate":
            raise ValueError(f"task {record.task_id} exists already")
        task_id, _, seen_fingerprint = existing.partition("|")
        sent, created_at = await self._redis.hmget(keys.task(task_id), ["sent", "created_at"])
        return Created(
            task_id=task_id,
            created=False,
            fingerprint_matches=seen_fingerprint == fingerprint,
            confirmed=sent is None or _text(sent) != "0",
            created_at=float(_text(created_at)) if created_at else None,
        )

    @_translated
    async def confirm_sent(self, task_id: str, *, ttl_seconds: int) -> None:
        """Mark the record's message as handed to the broker, and keep it `ttl_seconds`."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.task(task_id), "sent", "1")
            pipe.expire(keys.task(task_id), ttl_seconds)
            await pipe.execute()

    @_translated
    async def discard_unsent(
        self, task_id: str, *, tenant: str, user_id: str, idempotency_key: str
    ) -> bool:
        """Remove a record whose message could not be sent, unless a worker saw it already."""
        idem = keys.idempotency(tenant, user_id, idempotency_key) if idempotency_key else ""
        removed = await self._discard(
            keys=[keys.task(task_id), idem, keys.refused(task_id), keys.events(task_id)],
            args=[f"{task_id}|", REFUSED_TTL_SECONDS],
        )
        return bool(removed)

    @_translated
    async def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None when unknown.

        A record not yet confirmed sent is shown too (as `queued`): its id reaches a client only
        with the 202, which comes after the send, so an unconfirmed record a client asks for is
        one whose confirm failed — its message is out and a worker's claim confirms it.
        """
        raw = await self._redis.hgetall(keys.task(task_id))
        if not raw:
            return None
        return _decode({_text(k): _text(v) for k, v in raw.items()})

    @_translated
    async def claim(
        self,
        task_id: str,
        *,
        owner: str,
        now: float,
        lease_seconds: float,
        max_lost: int = 3,
        result_ttl_seconds: int = 7 * 24 * 3600,
    ) -> Claim:
        """Take the task for `owner`; a task whose workers were lost `max_lost` times (each
        claim after an expired lease counts) is failed here instead (outcome ABANDONED)."""
        answer = await self._claim(
            keys=[
                keys.task(task_id),
                self._running_key,
                keys.refused(task_id),
                keys.events(task_id),
            ],
            args=[
                owner,
                int(now * 1000),
                int(lease_seconds * 1000),
                task_id,
                max_lost,
                result_ttl_seconds,
            ],
        )
        outcome, attempts, published, lease_until = answer
        return Claim(
            outcome=ClaimOutcome(_text(outcome)),
            attempts=int(attempts),
            result_published=bool(int(published)),
            lease_until=int(lease_until) / 1000,
        )

    @_translated
    async def recreate(self, record: TaskRecord, *, ttl_seconds: int) -> bool:
        """Write back a record Redis lost (from its message) unless one exists; True if written."""
        fields = _encode(record) | {"sent": "1", "recreated": "1"}
        flat = [item for pair in fields.items() for item in pair]
        written = await self._recreate(keys=[keys.task(record.task_id)], args=[ttl_seconds, *flat])
        return bool(written)

    @_translated
    async def settle_dead_letter(
        self, task_id: str, *, reason: str, now: float, ttl_seconds: int
    ) -> str:
        """Fail a task the broker dead-lettered: "failed" (settled now, result unpublished),
        "finished" (it had ended already), "busy" (a live lease: look again later) or
        "missing" (no record)."""
        answer = await self._settle_dead(
            keys=[keys.task(task_id), self._running_key, self._dead_key, keys.events(task_id)],
            args=[repr(now), reason, ttl_seconds, task_id],
        )
        return _text(answer)

    @_translated
    async def dead_letters(self, *, limit: int = 100) -> list[tuple[str, float]]:
        """The newest dead-lettered tasks of this group: (task id, settled at)."""
        rows: list[Any] = await self._redis.zrevrange(self._dead_key, 0, limit - 1, withscores=True)
        return [(_text(row[0]), float(row[1])) for row in rows]

    @_translated
    async def redrive(self, task_id: str, *, ttl_seconds: int, now: float = 0.0) -> bool:
        """Put a dead-lettered task back to `queued` (its message must then be sent again)."""
        return bool(
            await self._redrive(
                keys=[keys.task(task_id), self._dead_key, keys.events(task_id)],
                args=[task_id, ttl_seconds, repr(now)],
            )
        )

    @_translated
    async def renew(self, task_id: str, *, owner: str, now: float, lease_seconds: float) -> int:
        """Extend `owner`'s lease: 0 when it lost the task, 1 renewed, 2 renewed but a cancel
        was requested (the backstop of the cancel announcement, `cancellations`)."""
        lease = int((now + lease_seconds) * 1000)
        renewed = await self._renew(
            keys=[keys.task(task_id), self._running_key], args=[owner, lease, task_id]
        )
        return int(renewed)

    @_translated
    async def finish(
        self,
        task_id: str,
        *,
        owner: str,
        status: TaskStatus,
        result: JSON | None,
        error: str | None,
        now: float,
        ttl_seconds: int,
    ) -> bool:
        """Store the outcome if `owner` still holds the task; False if it lost the lease."""
        if not status.finished:
            raise ValueError(f"finish needs done, failed or cancelled, not {status.value}")
        done = await self._finish(
            keys=[keys.task(task_id), self._running_key, keys.events(task_id)],
            args=[
                owner,
                status.value,
                orjson.dumps(result),
                error or "",
                repr(now),
                ttl_seconds,
                task_id,
            ],
        )
        return bool(done)

    @_translated
    async def release(
        self,
        task_id: str,
        *,
        owner: str,
        error: str,
        now: float = 0.0,
        ttl_seconds: int = INDEX_TTL_SECONDS,
    ) -> int:
        """Put a failed attempt back to `queued` with its error, for the redelivery to claim:
        1 released, 0 when `owner` lost the task, 2 when a cancel was requested meanwhile —
        then the task is `cancelled` instead (kept `ttl_seconds`; its result unpublished)."""
        released = await self._release(
            keys=[keys.task(task_id), self._running_key, keys.events(task_id)],
            args=[owner, error, task_id, repr(now), ttl_seconds],
        )
        return int(released)

    @_translated
    async def cancel(self, task_id: str, *, now: float, ttl_seconds: int) -> tuple[str, str]:
        """Cancel a task: (outcome, status it had). Outcomes: "cancelled" (it was queued and
        is `cancelled` now, or was already), "cancelling" (running: its worker is told on
        `keys.cancellations()` and stops it), "finished" (done or failed: nothing to cancel),
        "missing" (no record)."""
        answer = await self._cancel(
            keys=[keys.task(task_id), self._running_key, keys.events(task_id)],
            args=[
                repr(now),
                ttl_seconds,
                task_id,
                keys.cancellations(),
                "cancelled before a worker ran it",
            ],
        )
        outcome, previous = (_text(part) for part in answer)
        return outcome, previous

    async def cancellations(self) -> AsyncIterator[str]:
        """Task ids whose cancel is announced, for as long as the caller iterates; raises
        `StoreUnavailable` when the subscription breaks (the caller subscribes again)."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.cancellations())
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    yield _text(message["data"])
        except RedisError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        finally:
            with contextlib.suppress(RedisError):  # the connection is gone already
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    @_translated
    async def index_page(
        self, tenant: str, *, newest: float, oldest: float, limit: int
    ) -> IndexPage:
        """Up to `limit` index rows of `tenant` with `oldest <= created_at <= newest`, newest
        first, with each record's status and agent; rows whose record expired are removed."""
        index = keys.tenant_tasks(tenant)
        rows: list[Any] = await self._redis.zrevrangebyscore(
            index, _score(newest), _score(oldest), start=0, num=limit, withscores=True
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for member, _ in rows:
                pipe.hmget(keys.task(_text(member)), ["status", "agent"])
            found: list[Any] = await pipe.execute() if rows else []
        entries: list[IndexEntry] = []
        gone: list[str] = []
        for (member, score), (status, agent) in zip(rows, found, strict=True):
            task_id = _text(member)
            if status is None:
                gone.append(task_id)
                continue
            entries.append(
                IndexEntry(
                    task_id=task_id,
                    created_at=float(score),
                    status=_text(status),
                    agent=_text(agent) if agent else "",
                )
            )
        if gone:
            await self._redis.zrem(index, *gone)
        last = (_text(rows[-1][0]), float(rows[-1][1])) if rows else None
        return IndexPage(entries=entries, scanned=len(rows), last=last)

    @_translated
    async def get_many(self, task_ids: list[str]) -> list[TaskRecord | None]:
        """The records of `task_ids` in one round trip (None for each one gone)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hgetall(keys.task(task_id))
            raws: list[Any] = await pipe.execute() if task_ids else []
        return [
            _decode({_text(k): _text(v) for k, v in raw.items()}) if raw else None for raw in raws
        ]

    @_translated
    async def emit(
        self, task_id: str, *, kind: str, data: JSON, at: float, ttl_seconds: int
    ) -> str:
        """Append an event (an agent's progress) to the task's stream; its stream id."""
        stream = keys.events(task_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                stream,
                {"at": repr(at), "type": kind, "data": orjson.dumps(data)},
                maxlen=store_lua.EVENTS_MAXLEN,
                approximate=True,
            )
            pipe.expire(stream, ttl_seconds)
            event_id, _ = await pipe.execute()
        return _text(event_id)

    @_translated
    async def events(
        self, task_id: str, *, after: str, count: int, block_ms: int | None = None
    ) -> list[StoredEvent]:
        """Events after stream id `after` ("0" for all), oldest first; with `block_ms`, wait
        that long for the first one to arrive."""
        stream = keys.events(task_id)
        if block_ms is None:
            start = "-" if after == "0" else f"({after}"
            rows: Any = await self._redis.xrange(stream, min=start, count=count)
            return [_event(row) for row in rows]
        answer: Any = await self._redis.xread({stream: after}, count=count, block=block_ms)
        return [_event(row) for _, entries in answer for row in entries]

    @_translated
    async def record_callback_attempt(
        self, task_id: str, attempt: dict[str, JSON], *, ttl_seconds: int
    ) -> None:
        key = keys.callback_attempts(task_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, orjson.dumps(attempt))
            pipe.ltrim(key, -100, -1)
            pipe.expire(key, ttl_seconds)
            await pipe.execute()

    @_translated
    async def callback_attempts(self, task_id: str) -> list[dict[str, JSON]]:
        rows: list[Any] = await self._redis.lrange(keys.callback_attempts(task_id), 0, -1)
        return [orjson.loads(row) for row in rows]

    @_translated
    async def mark_published(self, task_id: str) -> None:
        await self._mark_published(keys=[keys.task(task_id)], args=[])

    @_translated
    async def open_count(self, tenant: str, *, now: float, max_age_seconds: float) -> int:
        """The tenant's unfinished tasks. Entries older than `max_age_seconds` (the unfinished
        record's TTL) are pruned first: their records expired without a terminal transition."""
        key = keys.open_tasks(tenant)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - max_age_seconds)
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    @_translated
    async def in_flight(self, *, now: float) -> int:
        """Tasks running with a live lease (expired leases belong to dead workers)."""
        return int(await self._redis.zcount(self._running_key, int(now * 1000), "+inf"))

    @_translated
    async def in_flight_by_pod(self, *, now: float) -> dict[str, int]:
        """Tasks running with a live lease per pod: the first part of each lease owner
        (`<pod>/<worker>/<run>`, the worker's host name, which is its pod's name)."""
        running = await self._redis.zrangebyscore(self._running_key, int(now * 1000), "+inf")
        if not running:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in running:
                pipe.hget(keys.task(_text(task_id)), "owner")
            owners = await pipe.execute()
        counts: dict[str, int] = {}
        for owner in owners:
            if owner is not None:
                pod = _text(owner).split("/", 1)[0]
                counts[pod] = counts.get(pod, 0) + 1
        return counts

    @property
    def client(self) -> aioredis.Redis:
        """The client itself, for the LLM layer's cache, limits and ledger (agentprod.llm),
        which take it as a parameter and never import redis."""
        return self._redis

    @_translated
    async def count_by_status(self, tenant: str, *, limit: int) -> tuple[dict[str, int], bool]:
        """`tenant`'s tasks per status, over its newest `limit` (its task index, in pipelined
        batches: never a scan of every record); True when all of them were counted."""
        index = keys.tenant_tasks(tenant)
        counts: dict[str, int] = {}
        for start in range(0, limit, COUNT_BATCH):
            members: list[Any] = await self._redis.zrevrange(
                index, start, min(start + COUNT_BATCH, limit) - 1
            )
            if not members:
                break
            async with self._redis.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.hget(keys.task(_text(member)), "status")
                found: list[Any] = await pipe.execute()
            for status in found:
                if status is not None:  # an expired record: its index row goes on listing
                    counts[_text(status)] = counts.get(_text(status), 0) + 1
        return counts, int(await self._redis.zcard(index)) <= limit


class KeyStore:
    """API keys in Redis (`keys.api_key`, `keys.api_keys`): only their digests are kept."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    @_translated
    async def add(self, key: ApiKey) -> None:
        fields: dict[Any, str] = {  # redis-py types the mapping invariantly
            "key_id": key.key_id,
            "tenant": key.tenant,
            "name": key.name,
            "digest": key.digest,
            "created_at": repr(key.created_at),
            "rate": key.rate,
            "max_queued": str(key.max_queued),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.api_key(key.key_id), mapping=fields)
            pipe.zadd(keys.api_keys(), {key.key_id: key.created_at})
            await pipe.execute()

    @_translated
    async def get(self, key_id: str) -> ApiKey | None:
        raw = await self._redis.hgetall(keys.api_key(key_id))
        return _decode_key({_text(k): _text(v) for k, v in raw.items()}) if raw else None

    @_translated
    async def all(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included, marked)."""
        ids = [_text(item) for item in await self._redis.zrange(keys.api_keys(), 0, -1)]
        found = [await self.get(key_id) for key_id in ids]
        return [key for key in found if key is not None]

    @_translated
    async def revoke(self, key_id: str, *, now: float) -> bool:
        """Mark the key revoked (kept for the record); False when there is no such key."""
        if not await self._redis.exists(keys.api_key(key_id)):
            return False
        await self._redis.hsetnx(keys.api_key(key_id), "revoked_at", repr(now))
        return True


class RequestLimiter:
    """Requests per window per key, shared by every API replica through Redis (the `limits`
    library's sliding-window counter: two counters per key, no per-request entries)."""

    def __init__(self, redis_url: str | None) -> None:
        from limits.aio import storage as limits_storage
        from limits.aio.strategies import SlidingWindowCounterRateLimiter

        storage: limits_storage.Storage = (
            limits_storage.RedisStorage(
                "async+" + redis_url, implementation="redispy", wrap_exceptions=True
            )
            if redis_url
            else limits_storage.MemoryStorage()  # the embedded mode of `agentprod dev`
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, rate: RateLimitItem, *identity: str) -> Window:
        """Count one request against `rate` for `identity`; where the window stands after it."""
        from limits.errors import StorageError

        try:
            allowed = await self._limiter.hit(rate, *identity)
            stats = await self._limiter.get_window_stats(rate, *identity)
        except (StorageError, RedisError) as error:
            raise StoreUnavailable(f"rate limiter: {error}") from error
        return Window(
            allowed=allowed,
            limit=rate.amount,
            remaining=stats.remaining,
            reset_at=stats.reset_time,
        )


#: Connections one process keeps to Redis at most. Callers beyond it wait for a free one
#: (up to POOL_WAIT_SECONDS): redis-py's default pool instead raises "Too many connections"
#: at 100 concurrent commands, which a worker at WORKER_CONCURRENCY 256 reaches at once.
POOL_MAX_CONNECTIONS = 128
POOL_WAIT_SECONDS = 10.0


def connect(url: str, *, timeout_seconds: float = 2.0) -> aioredis.Redis:
    """A pooled client with short timeouts, so a dead Redis fails fast instead of hanging."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=15,
        retry_on_timeout=False,
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client


def embedded() -> aioredis.Redis:
    """An in-process Redis (fakeredis, with Lua) for `agentprod dev` and the embedded tests."""
    import fakeredis  # only the embedded mode needs it

    client: aioredis.Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    return client


def _encode(record: TaskRecord) -> dict[str, str]:
    return {
        "task_id": record.task_id,
        "tenant": record.tenant,
        "user_id": record.user_id,
        "content": record.content,
        "agent": record.agent or "",
        "metadata": orjson.dumps(record.metadata).decode(),
        "status": record.status.value,
        "attempts": str(record.attempts),
        "created_at": repr(record.created_at),
        "published": "1" if record.result_published else "0",
        "deadline_at": repr(record.deadline_at) if record.deadline_at else "",
        "callback_url": record.callback_url or "",
        "priority": record.priority.value,
    }


def _decode(fields: dict[str, str]) -> TaskRecord:
    def number(name: str) -> float | None:
        value = fields.get(name)
        return float(value) if value else None

    result_raw = fields.get("result")
    return TaskRecord(
        task_id=fields["task_id"],
        tenant=fields.get("tenant") or OPEN_TENANT,
        user_id=fields["user_id"],
        content=fields.get("content", ""),
        agent=fields.get("agent") or None,
        metadata=orjson.loads(fields.get("metadata") or "{}"),
        status=TaskStatus(fields["status"]),
        result=orjson.loads(result_raw) if result_raw else None,
        error=fields.get("error") or None,
        attempts=int(fields.get("attempts") or 0),
        created_at=float(fields["created_at"]),
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        result_published=fields.get("published") == "1",
        deadline_at=number("deadline_at"),
        callback_url=fields.get("callback_url") or None,
        cancel_requested=fields.get("cancel_requested") == "1",
        priority=Priority(fields.get("priority") or Priority.NORMAL),
    )


def _decode_key(fields: dict[str, str]) -> ApiKey:
    revoked = fields.get("revoked_at")
    return ApiKey(
        key_id=fields["key_id"],
        tenant=fields["tenant"],
        name=fields.get("name", ""),
        digest=fields["digest"],
        created_at=float(fields["created_at"]),
        rate=fields["rate"],
        max_queued=int(fields["max_queued"]),
        revoked_at=float(revoked) if revoked else None,
    )


def _score(value: float) -> str:
    if value == float("inf"):
        return "+inf"
    if value == float("-inf"):
        return "-inf"
    return repr(value)


def _event(row: Any) -> StoredEvent:
    event_id, fields = row
    return StoredEvent(
        event_id=_text(event_id), fields={_text(k): _text(v) for k, v in fields.items()}
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
