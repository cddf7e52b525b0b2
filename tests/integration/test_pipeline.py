"""The product as a user runs it: `agentprod api` + `agentprod worker` processes on real
RocketMQ and Redis, with a downstream consumer group on the result topic.

Cases: 200 tasks all reach done and downstream receives exactly one result per task; a
duplicated message for a finished task is not run again; a worker killed with SIGKILL mid-task
loses nothing (redelivered, finished by another worker); a worker on SIGTERM finishes its
in-flight tasks and exits 0; scaling in from 3 workers to 1 in the middle of work loses and
repeats nothing; failing attempts are redelivered by RocketMQ and the task fails
after the group's max retries.
"""

from __future__ import annotations

import asyncio
import time

import redis
from agentprod.broker.base import Outgoing
from agentprod.broker.rocketmq import RocketMQPublisher, configuration
from agentprod.models import TaskMessage
from harness.rocketmq import RocketMQ

from tests.integration.helpers import (
    MAX_RETRIES,
    Launch,
    Names,
    post_tasks,
    read_results,
    record,
    statuses,
    wait_for_status,
)


async def test_200_tasks_done_and_one_result_each(
    launch: Launch, names: Names, rocketmq: RocketMQ, redis_client: redis.Redis
) -> None:
    api = launch("api")
    workers = [launch("worker", AGENT="echo", WORKER_CONCURRENCY="8") for _ in range(2)]
    bodies: list[dict[str, object]] = [
        {"user_id": f"user{i % 7}", "content": f"task {i}"} for i in range(200)
    ]
    task_ids = await post_tasks(api.url, bodies)
    assert len(set(task_ids)) == 200

    final = wait_for_status(redis_client, task_ids, {"done"}, timeout=120)
    assert final.count("done") == 200, {s: final.count(s) for s in set(final)}

    results = await read_results(
        endpoint=rocketmq.endpoint,
        group=names.downstream_group,
        topic=names.result_topic,
        expect=200,
    )
    assert sorted(r["task_id"] for r in results) == sorted(task_ids)  # one each, no duplicates
    assert {r["status"] for r in results} == {"done"}
    by_id = {r["task_id"]: r for r in results}
    assert by_id[task_ids[5]]["result"] == {"echo": "task 5"}
    finished = [w.metric("agentprod_tasks_finished_total", 'status="done"') for w in workers]
    assert sum(finished) == 200
    for worker in workers:
        assert worker.terminate() == 0


async def test_duplicate_message_for_a_finished_task_does_not_run_again(
    launch: Launch, names: Names, rocketmq: RocketMQ, redis_client: redis.Redis
) -> None:
    api = launch("api")
    worker = launch("worker", AGENT="echo")
    (task_id,) = await post_tasks(api.url, [{"user_id": "u", "content": "once"}])
    assert wait_for_status(redis_client, [task_id], {"done"}, timeout=60) == ["done"]
    deadline = time.monotonic() + 30
    while record(redis_client, task_id).get("published") != "1":  # result message sent
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    before = record(redis_client, task_id)

    publisher = RocketMQPublisher(
        config=configuration(
            endpoint=rocketmq.endpoint,
            access_key="",
            secret_key="",
            namespace="",
            timeout_seconds=3,
        ),
        endpoint=rocketmq.endpoint,
        topics=(names.request_topic,),
    )
    await publisher.start()
    duplicate = TaskMessage(task_id=task_id, user_id="u", content="once")
    for _ in range(2):
        await publisher.send(
            Outgoing(topic=names.request_topic, body=duplicate.encode(), key=task_id, tag="dup")
        )
    await publisher.close()

    deadline = time.monotonic() + 60
    while worker.metric("agentprod_deliveries_total", 'step="ack"') < 2:
        assert time.monotonic() < deadline, worker.tail()
        await asyncio.sleep(0.3)
    assert record(redis_client, task_id) == before  # same attempts, timestamps, result
    assert worker.metric("agentprod_deliveries_total", 'step="run"') == 1
    results = await read_results(
        endpoint=rocketmq.endpoint, group=names.downstream_group, topic=names.result_topic, expect=1
    )
    assert [r["task_id"] for r in results] == [task_id]


async def test_worker_killed_mid_task_loses_nothing(
    launch: Launch, names: Names, rocketmq: RocketMQ, redis_client: redis.Redis
) -> None:
    api = launch("api")
    doomed = launch("worker", AGENT="sleep")
    (task_id,) = await post_tasks(
        api.url, [{"user_id": "u", "content": "slow", "metadata": {"sleep_seconds": 4}}]
    )
    assert wait_for_status(redis_client, [task_id], {"running"}, timeout=60) == ["running"]
    doomed.kill()  # SIGKILL: no drain, no release, the claim stays with a dead owner

    survivor = launch("worker", AGENT="sleep")
    assert wait_for_status(redis_client, [task_id], {"done"}, timeout=90) == ["done"], (
        survivor.tail()
    )
    finished = record(redis_client, task_id)
    assert finished["attempts"] == "2"  # the killed run and the redelivered one
    results = await read_results(
        endpoint=rocketmq.endpoint, group=names.downstream_group, topic=names.result_topic, expect=1
    )
    assert [(r["task_id"], r["status"]) for r in results] == [(task_id, "done")]


async def test_sigterm_drains_in_flight_tasks_and_exits_zero(
    launch: Launch, names: Names, redis_client: redis.Redis
) -> None:
    api = launch("api")
    worker = launch("worker", AGENT="sleep", WORKER_CONCURRENCY="4")
    task_ids = await post_tasks(
        api.url,
        [{"user_id": "u", "content": str(i), "metadata": {"sleep_seconds": 3}} for i in range(4)],
    )
    assert wait_for_status(redis_client, task_ids, {"running"}, timeout=60) == ["running"] * 4
    started = time.monotonic()
    assert worker.terminate(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert [record(redis_client, t)["status"] for t in task_ids] == ["done"] * 4
    assert {record(redis_client, t)["attempts"] for t in task_ids} == {"1"}


async def test_failing_task_is_redelivered_then_failed_after_max_retries(
    launch: Launch, names: Names, rocketmq: RocketMQ, redis_client: redis.Redis
) -> None:
    api = launch("api")
    launch("worker", AGENT="sleep")
    (task_id,) = await post_tasks(
        api.url,
        [{"user_id": "u", "content": "x", "metadata": {"fail_attempts": 99, "sleep_seconds": 0}}],
    )
    assert wait_for_status(redis_client, [task_id], {"failed"}, timeout=120) == ["failed"]
    failed = record(redis_client, task_id)
    assert failed["attempts"] == str(MAX_RETRIES + 1)
    assert "planned failure on attempt 3" in failed["error"]
    results = await read_results(
        endpoint=rocketmq.endpoint, group=names.downstream_group, topic=names.result_topic, expect=1
    )
    assert [(r["status"], r["attempts"]) for r in results] == [("failed", MAX_RETRIES + 1)]


async def test_scale_in_mid_work_loses_and_repeats_nothing(
    launch: Launch, names: Names, rocketmq: RocketMQ, redis_client: redis.Redis
) -> None:
    """3 → 1 workers while tasks run, as a Deployment scale-down does it (SIGTERM, then the
    grace period the operator derives from spec.worker.terminationGracePeriodSeconds)."""
    api = launch("api")
    workers = [launch("worker", AGENT="sleep", WORKER_CONCURRENCY="4") for _ in range(3)]
    total = 150
    task_ids = await post_tasks(
        api.url,
        [
            {"user_id": "u", "content": str(i), "metadata": {"sleep_seconds": 0.5}}
            for i in range(total)
        ],
    )
    deadline = time.monotonic() + 60
    while statuses(redis_client, task_ids).count("done") < total // 5:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    leaving, staying = workers[:2], workers[2]
    assert all(w.metric("agentprod_deliveries_total", 'step="run"') > 0 for w in leaving)
    assert "running" in statuses(redis_client, task_ids)  # in the middle of the work
    assert [w.terminate(timeout=30) for w in leaving] == [0, 0]  # drained, clean exit

    final = wait_for_status(redis_client, task_ids, {"done"}, timeout=120)
    assert final.count("done") == total, staying.tail()
    attempts = [record(redis_client, t)["attempts"] for t in task_ids]
    assert set(attempts) == {"1"}  # nothing a leaving worker started was run again
    results = await read_results(
        endpoint=rocketmq.endpoint,
        group=names.downstream_group,
        topic=names.result_topic,
        expect=total,
    )
    assert sorted(r["task_id"] for r in results) == sorted(task_ids)  # one each
    assert staying.terminate() == 0
