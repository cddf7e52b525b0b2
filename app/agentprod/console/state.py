"""The console's Redis state, through the client the store hands out (`TaskStore.client`).

- recent tasks per tenant: the tenant's open set (queued and running, kept by the store) and a
  sorted set of the ids the workers settled, by finish time;
- pipelines: the operator's latest snapshot per pipeline (a hash) and its history (a stream
  capped at about an hour of scaling passes), read by the console's chart.
All writes are best effort: a Redis error is logged, never a refused task or a failed pass.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from agentprod import keys

log = logging.getLogger(__name__)

RECENT_KEPT = 500  # ids kept per tenant
SAMPLES_KEPT = 1200  # snapshots per pipeline: an hour at a 3 s poll
HISTORY_SECONDS = 3600


async def remember_finished(client: Any, *, tenant: str, task_id: str, at: float) -> None:
    """Index a task the worker just settled (the unfinished ones are the tenant's open set)."""
    key = keys.recent_tasks(tenant)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(key, {task_id: at})
        pipe.zremrangebyrank(key, 0, -RECENT_KEPT - 1)
        await pipe.execute()
    except Exception as error:
        log.warning("console: recent-task index not updated: %s", error)


async def recent_task_ids(client: Any, *, tenant: str, limit: int) -> list[str]:
    """The tenant's latest tasks: unfinished ones (the open set, by creation time) and the
    recently finished (by finish time), newest first."""
    pipe = client.pipeline(transaction=False)
    pipe.zrevrange(keys.open_tasks(tenant), 0, limit - 1, withscores=True)
    pipe.zrevrange(keys.recent_tasks(tenant), 0, limit - 1, withscores=True)
    open_tasks, finished = await pipe.execute()
    return merge_recent(open_tasks, finished, limit=limit)


def merge_recent(
    open_tasks: list[tuple[Any, float]], finished: list[tuple[Any, float]], *, limit: int
) -> list[str]:
    """Both lists by score, newest first, each id once (pure)."""
    best: dict[str, float] = {}
    for raw, score in [*open_tasks, *finished]:
        task_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        best[task_id] = max(score, best.get(task_id, score))
    return sorted(best, key=lambda task_id: best[task_id], reverse=True)[:limit]


async def write_pipeline(
    client: Any, *, namespace: str, name: str, snapshot: dict[str, Any]
) -> None:
    """Store the pipeline's latest snapshot and append it to its history."""
    body = orjson.dumps(snapshot | {"namespace": namespace, "name": name})
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hset(keys.pipelines(), f"{namespace}/{name}", body)
        pipe.xadd(
            keys.pipeline_samples(namespace, name),
            {"s": body},
            maxlen=SAMPLES_KEPT,
            approximate=True,
        )
        await pipe.execute()
    except Exception as error:
        log.warning("console: snapshot of %s/%s not written: %s", namespace, name, error)


async def forget_pipeline(client: Any, *, namespace: str, name: str) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.hdel(keys.pipelines(), f"{namespace}/{name}")
    pipe.delete(keys.pipeline_samples(namespace, name))
    await pipe.execute()


async def pipelines(client: Any) -> list[dict[str, Any]]:
    raw = await client.hgetall(keys.pipelines())
    found = [orjson.loads(value) for value in raw.values()]
    return sorted(found, key=lambda p: (p.get("namespace", ""), p.get("name", "")))


async def pipeline_history(
    client: Any, *, namespace: str, name: str, now: float | None = None
) -> list[dict[str, Any]]:
    """The snapshots of the last hour, oldest first."""
    since = int(((now or time.time()) - HISTORY_SECONDS) * 1000)
    entries = await client.xrange(keys.pipeline_samples(namespace, name), min=str(since))
    history = []
    for _, fields in entries:
        value = fields.get(b"s", fields.get("s"))
        if value is not None:
            history.append(orjson.loads(value))
    return history
