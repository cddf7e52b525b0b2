"""Group commit: calls made while earlier ones are in flight are sent together as one request.

The first call of an idle group goes out at once (at the end of the current loop iteration, so
calls made in the same iteration join it); while `max_in_flight` requests of a group are out,
later calls wait and leave together with the next request. Under light load a call costs one
request; under heavy load many calls share one, which is what makes the broker cheap per
message (one gRPC call, one commit-log write per batch instead of per message).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass
class _Group(Generic[T, R]):
    waiting: deque[tuple[T, asyncio.Future[R]]] = dataclasses.field(default_factory=deque)
    in_flight: int = 0
    scheduled: bool = False


class GroupCommit(Generic[K, T, R]):
    """Batch `submit(key, item)` calls per key into `flush(key, items) -> results` calls.

    `flush` returns one result per item, in order, or raises: then every item of that batch
    fails with the same exception. A batch holds at most `max_items` items and at most
    `max_bytes` (by `size(item)`; a single larger item still goes alone).
    """

    def __init__(
        self,
        flush: Callable[[K, list[T]], Awaitable[list[R]]],
        *,
        size: Callable[[T], int],
        max_items: int = 64,
        max_bytes: int = 1 << 20,
        max_in_flight: int = 2,
    ) -> None:
        if max_items < 1 or max_in_flight < 1:
            raise ValueError("max_items and max_in_flight must be at least 1")
        self._flush = flush
        self._size = size
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_in_flight = max_in_flight
        self._groups: dict[K, _Group[T, R]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        group = self._groups.setdefault(key, _Group())
        future: asyncio.Future[R] = loop.create_future()
        group.waiting.append((item, future))
        if not group.scheduled:
            group.scheduled = True
            loop.call_soon(self._start, key)
        return await future

    def _start(self, key: K) -> None:
        group = self._groups[key]
        group.scheduled = False
        while group.waiting and group.in_flight < self._max_in_flight:
            batch = self._take(group)
            if not batch:
                continue
            group.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(key, group, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self, group: _Group[T, R]) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        size = 0
        while group.waiting and len(batch) < self._max_items:
            item, future = group.waiting[0]
            if batch and size + self._size(item) > self._max_bytes:
                break
            group.waiting.popleft()
            if future.done():  # the caller gave up (cancelled) before it was sent
                continue
            batch.append((item, future))
            size += self._size(item)
        return batch

    async def _send(
        self, key: K, group: _Group[T, R], batch: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        try:
            results = await self._flush(key, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            group.in_flight -= 1
            if group.waiting and not group.scheduled:
                group.scheduled = True
                asyncio.get_running_loop().call_soon(self._start, key)

    async def close(self) -> None:
        """Wait for the requests in flight."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
