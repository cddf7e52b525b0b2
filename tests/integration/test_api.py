"""`agentprod api` as a process on real Redis and RocketMQ: bad input and dead dependencies.

Cases: malformed JSON, missing fields, wrong types, empty and oversized content and unknown
agents get 4xx with a JSON body naming the field; unknown task ids get 404; with Redis stopped
the API answers 503 + Retry-After and sends nothing, and recovers when Redis returns; with
RocketMQ unreachable it answers 503 and leaves no record behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from harness.apps import AgentprodProcess, free_port
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import Launch, wait_for_status

LIMIT = 1000


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b'{"user_id": "u", "content": ', 422, "body"),
        (b"[]", 422, "body"),
        (b'{"content": "x"}', 422, "user_id"),
        (b'{"user_id": "u"}', 422, "content"),
        (b'{"user_id": 5, "content": "x"}', 422, "user_id"),
        (b'{"user_id": "u", "content": ["x"]}', 422, "content"),
        (b'{"user_id": "u", "content": ""}', 422, "content"),
        (b'{"user_id": "u", "content": "x", "metadata": "m"}', 422, "metadata"),
        (b'{"user_id": "u", "content": "x", "agent": "Bad Agent!"}', 422, "agent"),
        (b'{"user_id": "u", "content": "x", "agent": "nope"}', 422, "agent"),
        (b'{"user_id": "u", "content": "x", "colour": "red"}', 422, "colour"),
        (b'{"user_id": "u", "content": "x", "priority": "urgent"}', 422, "priority"),
        (b'{"user_id": "u", "content": "x", "priority": 1}', 422, "priority"),
        (b'{"user_id": "u", "content": "' + b"x" * (LIMIT + 1) + b'"}', 413, "content"),
        (b'{"user_id": "u", "content": "' + b"x" * 200_000 + b'"}', 413, "body"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    raw: bytes, status: int, field: str, api_url: str
) -> None:
    answer = httpx.post(
        f"{api_url}/tasks", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert field in [problem["field"] for problem in answer.json()["detail"]], answer.text


@pytest.fixture(scope="module")
def api_url(
    rocketmq: RocketMQ, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One API process for all the input checks (they never reach a worker)."""
    topic = f"TopicValidation_{uuid.uuid4().hex[:8]}"
    rocketmq.create_topic(topic)
    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": rocketmq.endpoint,
        "MQ_TOPIC_REQUEST": topic,
        "MAX_CONTENT_BYTES": str(LIMIT),
        "API_AUTH": "off",  # the input checks; keys are tested in test_auth.py
    }
    api = AgentprodProcess(
        command="api", env=env, log_dir=tmp_path_factory.mktemp("api"), name="api-validation"
    )
    api.wait_healthy()
    yield api.url
    api.terminate()


def test_unknown_task_is_404(api_url: str) -> None:
    answer = httpx.get(f"{api_url}/tasks/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404
    assert answer.json()["detail"][0]["field"] == "task_id"


def request_count(api_url: str, labels: str) -> float:
    name = "agentprod_http_request_duration_seconds_count"
    for line in httpx.get(f"{api_url}/metrics").text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_are_timed_by_route_template_and_status(api_url: str) -> None:
    missing = 'method="GET",route="/tasks/{task_id}",status="404"'
    refused = 'method="POST",route="/tasks",status="422"'
    before = request_count(api_url, missing), request_count(api_url, refused)
    for _ in range(3):
        httpx.get(f"{api_url}/tasks/{uuid.uuid4()}")
    httpx.post(f"{api_url}/tasks", json={"user_id": "u"})
    after = request_count(api_url, missing), request_count(api_url, refused)
    assert (after[0] - before[0], after[1] - before[1]) == (3, 1)  # ids never become labels


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(home=tmp_path / "redis", port=free_port())
    server.start()
    yield server
    if server.running:
        server.stop()


def test_redis_down_gives_503_and_recovers(launch: Launch, own_redis: RedisServer) -> None:
    api = launch("api", REDIS_URL=own_redis.url)
    task = {"user_id": "u", "content": "x", "agent": "echo"}
    own_redis.stop()

    refused = httpx.post(f"{api.url}/tasks", json=task, timeout=10)
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert refused.json()["dependency"] == "redis"
    assert httpx.get(f"{api.url}/tasks/abc", timeout=10).status_code == 503
    ready = httpx.get(f"{api.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["ok"] is False
    assert ready.json()["checks"]["rocketmq"]["ok"] is True

    own_redis.start()
    accepted = httpx.post(f"{api.url}/tasks", json=task, timeout=10)
    assert accepted.status_code == 202, accepted.text
    assert httpx.get(f"{api.url}/readyz", timeout=10).status_code == 200

    # Nothing was sent while Redis was down: the worker sees exactly the one accepted task.
    worker = launch("worker", REDIS_URL=own_redis.url)
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    assert wait_for_status(client, [accepted.json()["task_id"]], {"done"}, 60) == ["done"]
    assert worker.metric("agentprod_deliveries_total", 'step="drop"') == 0
    assert worker.metric("agentprod_deliveries_total", 'step="run"') == 1


def test_rocketmq_unreachable_gives_503_and_keeps_no_record(
    launch: Launch, own_redis: RedisServer
) -> None:
    api = launch("api", REDIS_URL=own_redis.url, MQ_ENDPOINT=f"127.0.0.1:{free_port()}")
    answer = httpx.post(
        f"{api.url}/tasks",
        json={"user_id": "u", "content": "x"},
        headers={"Idempotency-Key": "k1"},
        timeout=60,
    )
    assert answer.status_code == 503
    assert answer.json()["dependency"] == "rocketmq"
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    # no record pretends to be queued and the key is free; only the refusal marker remains,
    # so a message that still arrives is dropped rather than taken for a lost record
    # (the tenant's task index may keep the id: listing prunes ids whose record is gone)
    (marker,) = [key for key in client.keys("agentprod:*") if ":tasks:" not in key]
    assert marker.startswith("agentprod:refused:")
    ready = httpx.get(f"{api.url}/readyz", timeout=10).json()
    assert ready["checks"]["rocketmq"]["ok"] is False
