"""Task priorities on the real stack (RocketMQ, Redis, `agentprod api` + `agentprod worker`).

A worker with one slot (the `sleep` agent) gets a backlog of normal tasks, then a few
`priority: high` ones: every high task must end before the later half of the backlog starts
(without priorities they would run after all of it). GET /tasks/{id} and GET /tasks carry
each task's priority.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from harness.apps import AgentprodProcess
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import MAX_RETRIES

BACKLOG = 12
HIGH = 3
SECONDS = 0.4  # per task: 12 normal tasks keep the one slot busy for about 5 s


@pytest.fixture(scope="module")
def api_url(
    rocketmq: RocketMQ, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    suffix = uuid.uuid4().hex[:10]
    request_topic, group = f"TopicPrio_{suffix}", f"GID_PRIO_{suffix}"
    for topic in (request_topic, f"{request_topic}-high", f"TopicPrioResult_{suffix}"):
        rocketmq.create_topic(topic, queues=8)
    rocketmq.create_group(group, max_retries=MAX_RETRIES)
    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": rocketmq.endpoint,
        "MQ_TOPIC_REQUEST": request_topic,
        "MQ_TOPIC_RESULT": f"TopicPrioResult_{suffix}",
        "MQ_GROUP_AGENT": group,
        "MQ_MAX_RETRIES": str(MAX_RETRIES),
        "WORKER_CONCURRENCY": "1",
        "WORKER_INVISIBLE_SECONDS": "10",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
        "AGENT": "sleep",
        "AGENT_CONFIG": f'{{"seconds": {SECONDS}}}',
        "API_AUTH": "off",
        "AGENTPROD_TEST_AGENTS": "true",
    }
    logs = tmp_path_factory.mktemp("priority")
    api = AgentprodProcess(command="api", env=env, log_dir=logs, name="api-priority")
    worker = AgentprodProcess(command="worker", env=env, log_dir=logs, name="worker-priority")
    try:
        api.wait_healthy()
        worker.wait_healthy()
        yield api.url
    finally:
        worker.terminate()
        api.terminate()


def _at(view: dict[str, Any], field: str) -> float:
    return datetime.fromisoformat(view[field]).timestamp()


async def _submit(client: httpx.AsyncClient, n: int, **extra: Any) -> str:
    answer = await client.post("/tasks", json={"user_id": "prio", "content": f"t{n}"} | extra)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


async def _until(
    client: httpx.AsyncClient, task_id: str, statuses: set[str], *, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = (await client.get(f"/tasks/{task_id}")).json()
        if view["status"] in statuses:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} not {statuses} within {timeout}s: {view}")


async def test_high_priority_tasks_overtake_a_normal_backlog(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        normal = [await _submit(client, n) for n in range(BACKLOG)]
        await _until(client, normal[0], {"running", "done"}, timeout=30)
        high = [await _submit(client, 100 + n, priority="high") for n in range(HIGH)]
        # Every task, not only the last one sent: pops across 8 queues keep no global order.
        for task_id in normal + high:
            await _until(client, task_id, {"done"}, timeout=60)
        views = {t: (await client.get(f"/tasks/{t}")).json() for t in normal + high}
        listed = (await client.get("/tasks", params={"limit": 100})).json()["tasks"]
    assert [views[t]["priority"] for t in high] == ["high"] * HIGH
    assert {views[t]["priority"] for t in normal} == {"normal"}
    # The list is the tenant's (other tests' tasks share it here): this test's rows, as GET
    # /tasks/{id} has them; the newest 100 hold all of them.
    assert {row["task_id"]: row["priority"] for row in listed if row["task_id"] in views} == {
        t: views[t]["priority"] for t in normal + high
    }
    last_high_done = max(_at(views[t], "finished_at") for t in high)
    starts = sorted(_at(views[t], "started_at") for t in normal)
    overtaken = sum(start > last_high_done for start in starts)
    print(f"\npriority: {overtaken}/{BACKLOG} normal tasks started after the last high one ended")
    # Without priorities the high tasks would end after every normal one.
    assert last_high_done <= starts[BACKLOG // 2], (overtaken, views)
