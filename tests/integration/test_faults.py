"""Faults that used to leave accepted tasks stuck or lost, each against real processes.

Cases: Redis stopped under running workers (the worker pauses receiving and reports unready
instead of burning deliveries, then resumes by itself: every task done, none dead-lettered); a
task that kills every worker running it (failed with "worker lost N times" and a failed result,
instead of `running` until its record expires); records lost by a Redis restart without
persistence (recreated from their messages, reported, and run); an Idempotency-Key left by a
submission that died before its send (repaired: the retry is accepted, not 409); a task the
broker dead-lettered (settled failed by the workers, listed and re-driven with `agentprod dlq`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
import uuid

import httpx
import orjson
import redis
from agentprod import store as stores
from agentprod import webhook_rules
from agentprod.models import TaskRecord, TaskRequest, TaskStatus
from harness.apps import AGENTPROD, free_port
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import (
    MAX_RETRIES,
    Launch,
    Names,
    Receiver,
    downstream_results,
    hold_without_ack,
    post_tasks,
    record,
    wait_for_status,
)


def readiness(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


WEBHOOK_SECRET = "dead-letter-webhook-secret"


def test_redis_outage_pauses_workers_and_loses_nothing(
    launch: Launch, durable_redis: RedisServer
) -> None:
    api = launch("api", REDIS_URL=durable_redis.url)
    worker = launch("worker", REDIS_URL=durable_redis.url, AGENT="sleep", WORKER_CONCURRENCY="4")
    bodies: list[dict[str, object]] = [
        {"user_id": "u", "content": f"t{i}", "metadata": {"sleep_seconds": 0.5}} for i in range(40)
    ]
    task_ids = asyncio.run(post_tasks(api.url, bodies))
    client = redis.Redis.from_url(durable_redis.url, decode_responses=True)
    assert "done" in wait_for_status(client, task_ids, {"done"}, timeout=3)  # some ran already
    durable_redis.stop()
    down_at = time.monotonic()
    while readiness(worker.url) != 503 and time.monotonic() - down_at < 15:
        time.sleep(0.2)
    assert readiness(worker.url) == 503
    assert httpx.get(f"{worker.url}/healthz", timeout=2).status_code == 200  # alive, paused
    time.sleep(12)  # longer than the invisible time: the old worker burned deliveries here
    assert worker.metric("agentprod_worker_store_up") == 0
    durable_redis.start()
    final = wait_for_status(client, task_ids, {"done"}, timeout=120)
    assert final.count("done") == len(task_ids), {s: final.count(s) for s in set(final)}
    assert readiness(worker.url) == 200
    assert worker.metric("agentprod_worker_store_up") == 1
    assert worker.metric("agentprod_tasks_finished_total", 'status="failed"') == 0


def test_task_that_kills_its_worker_every_time_fails_visibly(
    launch: Launch, redis_client: redis.Redis, names: Names, rocketmq: RocketMQ
) -> None:
    """The typical OOM input: every worker that runs it dies. It used to cycle until the broker
    dead-lettered it and its record stayed `running` for 7 days; now its second lost run
    (MQ_MAX_RETRIES 2 here: 3 deliveries) fails it, visibly, with a failed result."""
    api = launch("api")
    (task_id,) = asyncio.run(
        post_tasks(
            api.url, [{"user_id": "u", "content": "oom", "metadata": {"sleep_seconds": 300}}]
        )
    )
    for run in (1, 2):
        worker = launch("worker", AGENT="sleep")
        # this worker's own claim (a stale `running` of the killed one is not it)
        deadline = time.monotonic() + 60
        while int(record(redis_client, task_id).get("attempts") or 0) < run:
            assert time.monotonic() < deadline, record(redis_client, task_id)
            time.sleep(0.2)
        assert record(redis_client, task_id)["status"] == "running"
        worker.kill()  # SIGKILL, as the kernel's OOM killer does
        # the lease must run out before the next delivery can take over
        wait_for_status(redis_client, [task_id], {"queued"}, timeout=12)
    survivor = launch("worker", AGENT="sleep")
    assert wait_for_status(redis_client, [task_id], {"failed"}, timeout=60) == ["failed"], (
        survivor.tail()
    )
    stored = record(redis_client, task_id)
    assert stored["error"] == "worker lost 2 times running this task"
    results = downstream_results(rocketmq, names, expect=1)
    assert [(r["task_id"], r["status"]) for r in results] == [(task_id, "failed")]
    assert survivor.metric("agentprod_deliveries_total", 'step="run"') == 0


def test_records_lost_by_redis_are_recreated_and_run(
    launch: Launch, durable_redis: RedisServer, names: Names, rocketmq: RocketMQ
) -> None:
    """A Redis restart without persistence (or a failover) after the 202s: the workers used
    to drop every message whose record vanished, silently. Now each is reported (metric and
    a warning naming the task) and its record rebuilt from the message, and the task runs."""
    volatile = RedisServer(home=durable_redis.home.parent / "volatile", port=free_port())
    volatile.start()
    try:
        api = launch("api", REDIS_URL=volatile.url)
        bodies: list[dict[str, object]] = [{"user_id": "u", "content": f"v{i}"} for i in range(5)]
        task_ids = asyncio.run(post_tasks(api.url, bodies))
        volatile.stop()  # no AOF: every record is gone
        volatile.start()
        worker = launch("worker", REDIS_URL=volatile.url, AGENT="echo")
        client = redis.Redis.from_url(volatile.url, decode_responses=True)
        assert wait_for_status(client, task_ids, {"done"}, timeout=60) == ["done"] * 5
        assert worker.metric("agentprod_records_recreated_total") == 5
        assert f"task {task_ids[0]}: its record is gone from Redis" in worker.tail(200)
        assert client.hget(f"agentprod:task:{task_ids[0]}", "recreated") == "1"
        results = downstream_results(rocketmq, names, expect=5)
        assert sorted(r["task_id"] for r in results) == sorted(task_ids)
    finally:
        volatile.stop()


def test_key_of_a_submission_interrupted_before_its_send_is_repaired(
    launch: Launch, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The API process died between writing the record and sending the message: the record
    stays unconfirmed with the Idempotency-Key pointing at it. The client's retry with the key
    used to get 409 for 24 h; now it is accepted as a new task, which runs, and the leftover
    is gone (a message it might still have had would be dropped by its refusal marker)."""
    body = TaskRequest(user_id="u", content="retry me", agent="echo")
    fingerprint = hashlib.sha256(
        orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:32]
    key = f"crash-{uuid.uuid4().hex[:8]}"
    leftover = TaskRecord(
        task_id=str(uuid.uuid4()),
        user_id="u",
        content="retry me",
        agent="echo",
        status=TaskStatus.QUEUED,
        created_at=time.time() - 600,  # long past any send budget
    )

    async def crashed_submission() -> None:
        store = stores.TaskStore(stores.connect(redis_server.url), group="any")
        try:
            await store.create(leftover, ttl_seconds=3600, idempotency=(key, fingerprint, 3600))
        finally:
            await store.close()

    asyncio.run(crashed_submission())
    api = launch("api")
    launch("worker", AGENT="echo")
    answer = httpx.post(
        f"{api.url}/tasks",
        json=body.model_dump(exclude_none=True),
        headers={"Idempotency-Key": key},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    assert task_id != leftover.task_id
    assert wait_for_status(redis_client, [task_id], {"done"}, timeout=60) == ["done"]
    assert not redis_client.exists(f"agentprod:task:{leftover.task_id}")
    assert redis_client.exists(f"agentprod:refused:{leftover.task_id}")
    again = httpx.post(
        f"{api.url}/tasks",
        json=body.model_dump(exclude_none=True),
        headers={"Idempotency-Key": key},
        timeout=60,
    )
    assert (again.status_code, again.json()["task_id"]) == (202, task_id)  # the key holds


def agentprod_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENTPROD, *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dead_lettered_task_ends_failed_and_can_be_redriven(
    launch: Launch,
    base_env: dict[str, str],
    names: Names,
    rocketmq: RocketMQ,
    redis_client: redis.Redis,
) -> None:
    """A task whose deliveries all went unacknowledged (every worker that received it died
    before claiming) is dead-lettered by the broker; its record used to stay `queued` for 7
    days. A worker's dead-letter settler now fails it with the reason and publishes the failed
    result and its webhook; `agentprod dlq list` shows it and `agentprod dlq redrive` runs it
    again."""
    hooks = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "WEBHOOK_ALLOW_LOOPBACK": "true"}
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    api = launch("api", **hooks)
    body: dict[str, object] = {"user_id": "u", "content": "unlucky", "agent": "echo"}
    (task_id,) = asyncio.run(post_tasks(api.url, [body | {"callback_url": receiver.url("/ok")}]))
    deliveries = asyncio.run(
        hold_without_ack(
            endpoint=rocketmq.endpoint, group=names.group, topic=names.request_topic, seconds=45
        )
    )
    assert deliveries == MAX_RETRIES + 1  # then RocketMQ moved it to %DLQ%<group>
    worker = launch("worker", AGENT="echo", **hooks)
    assert wait_for_status(redis_client, [task_id], {"failed"}, timeout=90) == ["failed"], (
        worker.tail()
    )
    stored = record(redis_client, task_id)
    assert "dead-lettered" in stored["error"]
    results = downstream_results(rocketmq, names, expect=1)
    assert [(r["task_id"], r["status"]) for r in results] == [(task_id, "failed")]
    assert worker.metric("agentprod_dead_letters_settled_total") == 1
    deadline = time.monotonic() + 30
    while not receiver.calls_to("/ok") and time.monotonic() < deadline:
        time.sleep(0.2)
    ((headers, sent),) = receiver.calls_to("/ok")  # the failed end is called back, once
    assert webhook_rules.verify(
        WEBHOOK_SECRET,
        int(headers["x-agentprod-timestamp"]),
        sent,
        headers["x-agentprod-signature"],
    )
    assert (orjson.loads(sent)["task_id"], orjson.loads(sent)["status"]) == (task_id, "failed")
    receiver.shutdown()
    receiver.server_close()

    listed = agentprod_cli(base_env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout
    redriven = agentprod_cli(base_env, "dlq", "redrive", task_id)
    assert redriven.returncode == 0, redriven.stderr
    assert wait_for_status(redis_client, [task_id], {"done"}, timeout=60) == ["done"]
    assert task_id not in agentprod_cli(base_env, "dlq", "list").stdout
    again = agentprod_cli(base_env, "dlq", "redrive", task_id)
    assert again.returncode == 1
    assert "is not dead-lettered" in again.stderr
