"""The console's pipeline state in Redis, through the client the store hands out
(`TaskStore.client`): the operator's latest snapshot per pipeline (a hash) and its history (a
stream capped at about an hour of scaling passes), read by the console's chart. The console's
tasks are the store's own (the tenant's task index, as `GET /tasks` reads it).
All writes are best effort: a Redis error is logged, never a refused task or a failed pass.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from agentprod import keys

log = logging.getLogger(__name__)

SAMPLES_KEPT = 1200  # snapshots per pipeline: an hour at a 3 s poll
HISTORY_SECONDS = 3600


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
