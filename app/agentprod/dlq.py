"""`agentprod dlq list | show ID | redrive ID...`: the group's dead-lettered tasks.

The workers' dead-letter settler (`dead_letters`) marks each task the broker dead-lettered as
`failed` and indexes it; this command lists that index (newest first), shows a task's record,
and re-drives tasks: the record goes back to `queued` and its message is sent to the request
topic again, so a worker runs it anew.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from agentprod import runtime
from agentprod.broker.base import BrokerUnavailable, Outgoing
from agentprod.settings import Settings
from agentprod.store import StoreUnavailable


def run(settings: Settings, *, action: str, task_ids: list[str], out: TextIO = sys.stdout) -> int:
    try:
        return asyncio.run(_run(settings, action=action, task_ids=task_ids, out=out))
    except (StoreUnavailable, BrokerUnavailable) as error:
        print(f"agentprod dlq: {error}", file=sys.stderr)
        return 2


async def _run(settings: Settings, *, action: str, task_ids: list[str], out: TextIO) -> int:
    services = runtime.real_services(settings, topics=(settings.mq_topic_request,))
    try:
        if action == "list":
            rows = await services.store.dead_letters(limit=1000)
            for task_id, settled in rows:
                record = await services.store.get(task_id)
                error = record.error if record else "(record expired)"
                when = datetime.fromtimestamp(settled, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                print(f"{task_id}  {when}  {error}", file=out)
            print(f"{len(rows)} dead-lettered task(s) in {settings.mq_group_agent}", file=out)
            return 0
        missing = 0
        for task_id in task_ids:
            record = await services.store.get(task_id)
            if record is None:
                print(f"agentprod dlq: no task {task_id}", file=sys.stderr)
                missing += 1
                continue
            if action == "show":
                print(record.model_dump_json(indent=2), file=out)
                continue
            if not await services.store.redrive(
                task_id, ttl_seconds=settings.task_pending_ttl_seconds
            ):
                print(f"agentprod dlq: task {task_id} is not dead-lettered", file=sys.stderr)
                missing += 1
                continue
            await services.publisher.start()
            await services.publisher.send(
                Outgoing(
                    topic=settings.mq_topic_request,
                    body=record.message().encode(),
                    key=task_id,
                    tag=record.agent or "default",
                )
            )
            print(json.dumps({"task_id": task_id, "status": "queued"}), file=out)
        return 1 if missing else 0
    finally:
        await services.publisher.close()
        await services.store.close()
