"""The combined chaos run: every accepted task reaches a visible end under all faults at once.

2,000 tasks of 0.3 s (sleep agent) on three workers of concurrency 4, with the real `agentprod
api`/`worker` processes, RocketMQ and a Redis with AOF (as production needs), while
(a) a random worker is SIGKILLed every 3 to 6 s and replaced, (b) Redis is stopped for 20 s and
restarted, (c) RocketMQ (name server and broker) is restarted once. At the end: every task is
`done` or `failed` (none `queued`/`running`), each has exactly one outcome on the result topic
after de-duplication by `result_id`, and the figures are printed (docs/reliability.md keeps
them). Bounded: the run gives up after 10 minutes.
"""

from __future__ import annotations

import asyncio
import collections
import random
import threading
import time

import redis
from harness.apps import AgentprodProcess
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import Launch, Names, post_tasks, read_results, statuses

TASKS = 2000
WORKERS = 3
RETRIES = 8  # deliveries to spare for kills and outages (the broker's group setting too)
SETTLE_TIMEOUT = 600.0


def test_two_thousand_tasks_under_kills_and_outages_all_end_once(
    launch: Launch,
    names: Names,
    rocketmq: RocketMQ,
    durable_redis: RedisServer,
) -> None:
    rocketmq.create_group(names.group, max_retries=RETRIES)
    env = {
        "REDIS_URL": durable_redis.url,
        "MQ_MAX_RETRIES": str(RETRIES),
        "AGENT": "sleep",
        "WORKER_CONCURRENCY": "4",
    }
    api = launch("api", **env)
    bodies: list[dict[str, object]] = [
        {"user_id": f"u{i % 5}", "content": f"c{i}", "metadata": {"sleep_seconds": 0.3}}
        for i in range(TASKS)
    ]
    started = time.monotonic()
    task_ids = asyncio.run(post_tasks(api.url, bodies))
    accepted_in = time.monotonic() - started
    workers: list[AgentprodProcess] = [launch("worker", **env) for _ in range(WORKERS)]
    client = redis.Redis.from_url(durable_redis.url, decode_responses=True)
    kills = 0
    stop_chaos = threading.Event()

    def kill_loop() -> None:
        nonlocal kills
        chance = random.Random(7)
        while not stop_chaos.wait(chance.uniform(3.0, 6.0)):
            victim = workers.pop(chance.randrange(len(workers)))
            victim.kill()
            kills += 1
            workers.append(launch("worker", wait=False, **env))

    killer = threading.Thread(target=kill_loop, daemon=True)
    killer.start()
    try:
        time.sleep(10)
        durable_redis.stop()  # (b) 20 s without Redis
        time.sleep(20)
        durable_redis.start()
        time.sleep(15)
        rocketmq.stop()  # (c) the broker (and name server) restarted
        rocketmq.start()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            seen = collections.Counter(statuses(client, task_ids))
            if seen["done"] + seen["failed"] == TASKS or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        stop_chaos.set()
        killer.join(timeout=30)
    settled_in = time.monotonic() - started
    assert seen["done"] + seen["failed"] == TASKS, dict(seen)  # nothing queued or running

    attempts = [int(a or 0) for a in _fields(client, task_ids, "attempts")]
    results = asyncio.run(
        read_results(
            endpoint=rocketmq.endpoint,
            group=names.downstream_group,
            topic=names.result_topic,
            expect=TASKS,
            settle_seconds=10.0,
            timeout=240.0,
        )
    )
    outcomes: dict[str, set[str]] = collections.defaultdict(set)
    for result in results:
        outcomes[result["task_id"]].add(result["result_id"])
    duplicates = len(results) - sum(len(ids) for ids in outcomes.values())
    print(
        f"\nchaos: accepted {TASKS} in {accepted_in:.1f} s; done {seen['done']}, failed "
        f"{seen['failed']}; worker SIGKILLs {kills}; runs beyond the first "
        f"{sum(max(0, a - 1) for a in attempts)}; result messages {len(results)} "
        f"(duplicates {duplicates}); settled {settled_in:.0f} s after the first submit"
    )
    assert sorted(outcomes) == sorted(task_ids)  # one result per task after de-duplication
    assert all(len(ids) == 1 for ids in outcomes.values())  # and one outcome each
    for worker in workers:
        if worker.process.poll() is None:
            worker.terminate()


def _fields(client: redis.Redis, task_ids: list[str], field: str) -> list[str | None]:
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(f"agentprod:task:{task_id}", field)
    return list(pipe.execute())
