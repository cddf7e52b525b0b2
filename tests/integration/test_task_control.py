"""Task control on the real stack (RocketMQ, Redis, `agentprod api` + `agentprod worker`).

Cases: GET /tasks lists, filters and pages 500 tasks; cancel before a worker claims the task,
while it runs (the agent stops, its slot is freed, the result says `cancelled`) and after it
ended (409); an SSE client that disconnects mid-run and resumes with Last-Event-ID sees every
event exactly once, and one that connects after the end gets the whole history; a loopback
webhook receiver gets one signed call per task, and a receiver failing twice gets it on the
third attempt; another tenant's key sees none of it (404, empty list). One API (keys
required) and one worker (2 slots, the `sleep` agent) serve the whole module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis
from agentprod import keys, webhook_rules
from harness.apps import AGENTPROD, AgentprodProcess
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import MAX_RETRIES, Receiver, read_results

SECRET = "test-webhook-secret"
TERMINAL = {"done", "failed", "cancelled"}


@dataclasses.dataclass
class Stack:
    url: str
    redis: redis.Redis
    endpoint: str
    result_topic: str
    downstream_group: str
    receiver: Receiver
    headers: dict[str, str]  # tenant "acme"'s key
    other: dict[str, str]  # tenant "globex"'s key


@pytest.fixture(scope="module")
def stack(
    rocketmq: RocketMQ, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:10]
    request_topic, result_topic = f"TopicCtl_{suffix}", f"TopicCtlResult_{suffix}"
    group = f"GID_CTL_{suffix}"
    rocketmq.create_topic(request_topic, queues=8)
    rocketmq.create_topic(f"{request_topic}-high", queues=8)
    rocketmq.create_topic(result_topic, queues=8)
    rocketmq.create_group(group, max_retries=MAX_RETRIES)
    rocketmq.create_group(f"{group}_DOWN")
    env = {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": rocketmq.endpoint,
        "MQ_NAMESRV": rocketmq.namesrv_addr,
        "MQ_TOPIC_REQUEST": request_topic,
        "MQ_TOPIC_RESULT": result_topic,
        "MQ_GROUP_AGENT": group,
        "MQ_MAX_RETRIES": str(MAX_RETRIES),
        "WORKER_INVISIBLE_SECONDS": "10",
        "WORKER_AWAIT_SECONDS": "5",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_LOOPBACK": "true",
        "WEBHOOK_BACKOFF_SECONDS": "0.2",
        "AGENT": "sleep",
        "API_AUTH": "required",
        "AGENTPROD_TEST_AGENTS": "true",  # `sleep` and `echo`
    }
    logs = tmp_path_factory.mktemp("control")
    api = AgentprodProcess(command="api", env=env, log_dir=logs, name="api-control")
    worker = AgentprodProcess(
        command="worker", env=env | {"WORKER_CONCURRENCY": "2"}, log_dir=logs, name="worker-ctl"
    )
    receiver = Receiver()
    serving = threading.Thread(target=receiver.serve_forever, daemon=True)
    serving.start()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        api.wait_healthy()
        worker.wait_healthy()
        yield Stack(
            api.url,
            client,
            rocketmq.endpoint,
            result_topic,
            f"{group}_DOWN",
            receiver,
            headers=_key(redis_server, "acme"),
            other=_key(redis_server, "globex"),
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
        client.close()
        worker.terminate()
        api.terminate()


def _key(redis_server: RedisServer, tenant: str) -> dict[str, str]:
    made = subprocess.run(
        [AGENTPROD, "keys", "create", "--tenant", tenant, "--rate", "100000/minute", "--json"],
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}


def test_submit_follow_prints_the_events(stack: Stack) -> None:
    done = subprocess.run(
        [AGENTPROD, "submit", "follow me", "--agent", "sleep", "--follow", "--timeout", "60"],
        env={
            "AGENTPROD_URL": stack.url,
            "AGENTPROD_API_KEY": stack.headers["Authorization"].removeprefix("Bearer "),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split(" ", 1) for line in done.stderr.splitlines()]
    events = [json.loads(data) for _, data in lines]
    assert [(event["type"], event.get("status")) for event in events] == [
        ("status", "queued"),
        ("status", "running"),
        ("status", "done"),
        ("end", "done"),
    ]
    assert json.loads(done.stdout)["status"] == "done"


async def post_tasks(stack: Stack, bodies: list[dict[str, Any]]) -> list[str]:
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client:

        async def post(body: dict[str, Any]) -> str:
            async with limit:
                answer = await client.post("/tasks", json=body)
                assert answer.status_code == 202, answer.text
                return str(answer.json()["task_id"])

        return list(await asyncio.gather(*(post(body) for body in bodies)))


def submit(stack: Stack, **body: Any) -> str:
    answer = httpx.post(
        f"{stack.url}/tasks", json={"user_id": "u1", "content": "x"} | body, headers=stack.headers
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


def view(stack: Stack, task_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{stack.url}/tasks/{task_id}", headers=stack.headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def wait_status(
    stack: Stack, task_id: str, wanted: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        seen = view(stack, task_id)
        if seen["status"] in wanted or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def cancel(stack: Stack, task_id: str) -> httpx.Response:
    return httpx.post(f"{stack.url}/tasks/{task_id}/cancel", headers=stack.headers)


def test_list_filters_and_pages_500_tasks(stack: Stack) -> None:
    since = datetime.now(UTC)
    bodies: list[dict[str, Any]] = [
        {
            "user_id": "lister",
            "content": f"task {n}",
            "agent": "echo" if n % 2 else "sleep",
            "metadata": {"sleep_seconds": 0},
        }
        for n in range(500)
    ]
    ids = asyncio.run(post_tasks(stack, bodies))
    until = datetime.now(UTC)
    echo_ids = {
        task_id for task_id, body in zip(ids, bodies, strict=True) if body["agent"] == "echo"
    }
    window = {"created_after": since.isoformat(), "created_before": until.isoformat()}

    def pages(**params: Any) -> list[list[dict[str, Any]]]:
        seen: list[list[dict[str, Any]]] = []
        cursor = None
        while True:
            query = window | params | ({"cursor": cursor} if cursor else {})
            answer = httpx.get(f"{stack.url}/tasks", params=query, headers=stack.headers)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            seen.append(page["tasks"])
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    listed = pages(limit=100)
    flat = [task for page in listed for task in page]
    assert len(flat) == 500
    assert {task["task_id"] for task in flat} == set(ids)
    created = [task["created_at"] for task in flat]
    assert created == sorted(created, reverse=True)  # newest first
    assert all(len(page) <= 100 for page in listed)
    echo = [task["task_id"] for page in pages(agent="echo", limit=37) for task in page]
    assert sorted(echo) == sorted(echo_ids)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = [task for page in pages(status="done", limit=100) for task in page]
        if len(done) == 500:
            break
        time.sleep(0.5)
    assert {task["task_id"] for task in done} == set(ids)
    queued = pages(status=["queued", "running"], limit=100)
    assert [task for page in queued for task in page] == []
    # the window's edges are honoured: before the first task, nothing
    answer = httpx.get(
        f"{stack.url}/tasks", params={"created_before": since.isoformat()}, headers=stack.headers
    )
    assert not {task["task_id"] for task in answer.json()["tasks"]} & set(ids)
    # another tenant lists none of them
    theirs = httpx.get(f"{stack.url}/tasks", params={"limit": 100}, headers=stack.other)
    assert theirs.status_code == 200
    assert not {task["task_id"] for task in theirs.json()["tasks"]} & set(ids)
    for bad, field in (({"limit": 101}, "limit"), ({"cursor": "!!"}, "cursor")):
        refused = httpx.get(f"{stack.url}/tasks", params=bad, headers=stack.headers)
        assert refused.status_code == 422, refused.text
        assert field in [problem["field"].split(".")[-1] for problem in refused.json()["detail"]]
    assert stack.redis.zcard(keys.tenant_tasks("acme")) >= 500
    assert stack.redis.ttl(keys.tenant_tasks("acme")) > 0


def test_cancel_before_claim_during_run_and_after_end(stack: Stack) -> None:
    long = {"metadata": {"sleep_seconds": 30, "steps": 300}}
    first, second = submit(stack, **long), submit(stack, **long)
    assert wait_status(stack, first, {"running"})["status"] == "running"
    assert wait_status(stack, second, {"running"})["status"] == "running"
    # both slots are busy: this one waits in the broker, unclaimed
    waiting = submit(stack, metadata={"sleep_seconds": 0})
    time.sleep(0.5)
    assert view(stack, waiting)["status"] == "queued"
    answer = cancel(stack, waiting)
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    assert view(stack, waiting)["status"] == "cancelled"

    asked = time.monotonic()
    answer = cancel(stack, first)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"task_id": first, "status": "running", "cancel_requested": True}
    stopped = wait_status(stack, first, TERMINAL, timeout=30)
    latency = time.monotonic() - asked
    print(f"cancel of a running task: cancelled {latency * 1000:.0f} ms after the request")
    assert stopped["status"] == "cancelled"
    assert stopped["error"] == "cancelled by request"
    assert stopped["result"] is None
    steps_at_cancel = _steps(stack, first)
    assert cancel(stack, first).status_code == 200  # again: harmless, already cancelled

    # the slot is free: the waiting (cancelled) one is settled and a new task runs at once,
    # while `second` still holds the other slot
    quick = submit(stack, metadata={"sleep_seconds": 0})
    assert wait_status(stack, quick, TERMINAL, timeout=30)["status"] == "done"
    assert view(stack, second)["status"] == "running"
    assert _steps(stack, first) == steps_at_cancel  # the agent stopped stepping
    never_ran = view(stack, waiting)
    assert (never_ran["status"], never_ran["attempts"], never_ran["started_at"]) == (
        "cancelled",
        0,
        None,
    )
    events = [event["status"] for event in _history(stack, waiting) if event["type"] == "status"]
    assert events == ["queued", "cancelled"]

    answer = cancel(stack, second)
    assert answer.status_code == 202
    assert wait_status(stack, second, TERMINAL, timeout=30)["status"] == "cancelled"

    answer = cancel(stack, quick)
    assert answer.status_code == 409, answer.text
    assert answer.json()["status"] == "done"
    assert answer.json()["detail"][0]["field"] == "task_id"
    assert cancel(stack, str(uuid.uuid4())).status_code == 404
    foreign = httpx.post(f"{stack.url}/tasks/{second}/cancel", headers=stack.other)
    assert foreign.status_code == 404  # another tenant's task is unknown to this key

    results = asyncio.run(
        read_results(
            endpoint=stack.endpoint,
            group=stack.downstream_group,
            topic=stack.result_topic,
            expect=1,
            settle_seconds=2,
        )
    )
    by_id = {result["task_id"]: result["status"] for result in results}
    assert by_id[first] == by_id[second] == by_id[waiting] == "cancelled"
    assert by_id[quick] == "done"


def _history(stack: Stack, task_id: str, last_event_id: str | None = None) -> list[dict[str, Any]]:
    """Everything GET /tasks/{id}/events serves (it ends after the terminal event)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    return [event for _, event in _read_sse(stack, task_id, headers=headers)]


def _steps(stack: Stack, task_id: str) -> int:
    return sum(
        1 for _, fields in stack.redis.xrange(keys.events(task_id)) if fields.get("type") == "step"
    )


def _read_sse(
    stack: Stack, task_id: str, *, headers: dict[str, str], stop_after: int | None = None
) -> list[tuple[str | None, dict[str, Any]]]:
    """(id, data) of each event until the `end` event — or, with `stop_after`, disconnect once
    that many events with an id came."""
    got: list[tuple[str | None, dict[str, Any]]] = []
    with httpx.stream(
        "GET", f"{stack.url}/tasks/{task_id}/events", headers=stack.headers | headers, timeout=30
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        event_id: str | None = None
        for line in answer.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
                got.append((event_id, data))
                if data["type"] == "end":
                    return got
                event_id = None
                if stop_after is not None and len(got) >= stop_after:
                    return got
    raise AssertionError(f"the stream closed without an end event: {got}")


def test_sse_resumes_with_last_event_id_exactly_once(stack: Stack) -> None:
    task_id = submit(stack, metadata={"sleep_seconds": 3, "steps": 10})
    first = _read_sse(stack, task_id, headers={}, stop_after=4)  # queued, running, 2 steps
    assert first[-1][0] is not None
    time.sleep(1.0)  # events keep coming while nobody listens
    rest = _read_sse(stack, task_id, headers={"Last-Event-ID": str(first[-1][0])})
    seen = first + rest
    ids = [event_id for event_id, _ in seen if event_id is not None]
    stored = [entry_id for entry_id, _ in stack.redis.xrange(keys.events(task_id))]
    assert ids == stored  # every event, once, in order
    kinds = [(event["type"], event.get("status"), event.get("step")) for _, event in seen]
    assert kinds == [
        ("status", "queued", None),
        ("status", "running", None),
        *[("step", None, n) for n in range(1, 11)],
        ("status", "done", None),
        ("end", "done", None),
    ]
    assert seen[-2][1]["result"]["slept_seconds"] == 3
    after_end = _read_sse(stack, task_id, headers={})
    assert after_end == seen  # the whole history, then the end
    resumed_at_end = _read_sse(stack, task_id, headers={"Last-Event-ID": ids[-1]})
    assert [event["type"] for _, event in resumed_at_end] == ["end"]
    bad = httpx.get(
        f"{stack.url}/tasks/{task_id}/events", headers=stack.headers | {"Last-Event-ID": "nope"}
    )
    assert bad.status_code == 422
    unknown = httpx.get(f"{stack.url}/tasks/{uuid.uuid4()}/events", headers=stack.headers)
    assert unknown.status_code == 404
    foreign = httpx.get(f"{stack.url}/tasks/{task_id}/events", headers=stack.other)
    assert foreign.status_code == 404


def test_webhooks_are_signed_delivered_once_and_retried(stack: Stack) -> None:
    receiver = stack.receiver
    ok_url, flaky_url = receiver.url("/ok"), receiver.url("/flaky")
    tasks = [submit(stack, metadata={"sleep_seconds": 0}, callback_url=ok_url) for _ in range(5)]
    flaky = submit(stack, metadata={"sleep_seconds": 0}, callback_url=flaky_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(receiver.calls_to("/ok")) >= 5 and len(receiver.calls_to("/flaky")) >= 3:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # room for a duplicate to show
    calls = receiver.calls_to("/ok")
    delivered = [orjson.loads(body)["task_id"] for _, body in calls]
    assert sorted(delivered) == sorted(tasks)  # one call per task
    for headers, body in calls:
        timestamp = int(headers["x-agentprod-timestamp"])
        assert abs(time.time() - timestamp) < 120
        assert webhook_rules.verify(SECRET, timestamp, body, headers["x-agentprod-signature"])
        assert not webhook_rules.verify(
            "other-secret", timestamp, body, headers["x-agentprod-signature"]
        )
        message = orjson.loads(body)
        assert message["status"] == "done"
        assert headers["x-agentprod-delivery"] == message["result_id"]
    flaky_calls = receiver.calls_to("/flaky")
    assert [headers["x-agentprod-attempt"] for headers, _ in flaky_calls] == ["1", "2", "3"]
    attempts = httpx.get(f"{stack.url}/tasks/{flaky}/callbacks", headers=stack.headers).json()[
        "attempts"
    ]
    assert [(a["attempt"], a["status_code"], a["ok"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 204, True),
    ]
    for url, field in (
        ("ftp://127.0.0.1/x", "callback_url"),
        ("http://169.254.169.254/latest/meta-data", "callback_url"),
        ("http://[fe80::1]/x", "callback_url"),
        ("not a url", "callback_url"),
    ):
        answer = httpx.post(
            f"{stack.url}/tasks",
            json={"user_id": "u", "content": "x", "callback_url": url},
            headers=stack.headers,
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["detail"][0]["field"] == field
