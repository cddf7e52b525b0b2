"""Helpers of the integration tests: the per-test names, `launch`'s type, waiting on Redis and
reading the result topic downstream. Tests and the conftest import these; no test module
imports another test module or the conftest."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import redis
from agentprod import keys
from agentprod.broker.base import BrokerUnavailable
from agentprod.broker.rocketmq import RocketMQConsumer, configuration
from harness.apps import AGENTPROD, AgentprodProcess, free_port
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

#: Deliveries a test group allows before dead-lettering (MQ_MAX_RETRIES of the processes).
MAX_RETRIES = 2

#: `launch("api" | "worker", wait=True, **env)` → a started (by default healthy) process.
Launch = Callable[..., AgentprodProcess]


@dataclasses.dataclass(frozen=True)
class Names:
    request_topic: str
    result_topic: str
    group: str
    downstream_group: str


def statuses(client: redis.Redis, task_ids: list[str]) -> list[str | None]:
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(keys.task(task_id), "status")
    return list(pipe.execute())


def wait_for_status(
    client: redis.Redis, task_ids: list[str], wanted: set[str], timeout: float
) -> list[str | None]:
    deadline = time.monotonic() + timeout
    while True:
        seen = statuses(client, task_ids)
        if all(status in wanted for status in seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def record(client: redis.Redis, task_id: str) -> dict[str, Any]:
    return dict(client.hgetall(keys.task(task_id)))


async def read_results(
    *,
    endpoint: str,
    group: str,
    topic: str,
    expect: int,
    settle_seconds: float = 5.0,
    timeout: float = 90.0,
) -> list[dict[str, Any]]:
    """Consume the result topic as a downstream group would: until `expect` messages arrived
    and nothing more came for `settle_seconds` (so duplicates would be seen)."""
    consumer = plain_consumer(endpoint=endpoint, group=group, topic=topic)
    await consumer.start()
    got: list[dict[str, Any]] = []
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                deliveries = await consumer.receive(max_messages=32, invisible_seconds=60)
            except Exception as error:  # the first receives of a new group can race its settings
                errors.append(str(error))
                await asyncio.sleep(0.5)
                continue
            for delivery in deliveries:
                got.append(orjson.loads(delivery.body))
                await consumer.ack(delivery)
            if deliveries:
                quiet_since = time.monotonic()
            elif len(got) >= expect and time.monotonic() - quiet_since > settle_seconds:
                break
    finally:
        await consumer.close()
    assert len(got) >= expect or not errors, errors[-3:]
    return got


async def post_tasks(url: str, bodies: list[dict[str, object]]) -> list[str]:
    """POST each body to /tasks (20 at a time); every one must be accepted (202)."""
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def post(body: dict[str, object]) -> str:
            async with limit:
                answer = await client.post("/tasks", json=body)
                assert answer.status_code == 202, answer.text
                return str(answer.json()["task_id"])

        return list(await asyncio.gather(*(post(body) for body in bodies)))


async def hold_without_ack(*, endpoint: str, group: str, topic: str, seconds: float) -> int:
    """Receive from `topic` as `group` and never ack, for `seconds`: what a worker that dies
    right after each receive does. Returns the deliveries seen."""
    consumer = plain_consumer(endpoint=endpoint, group=group, topic=topic)
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                seen += len(await consumer.receive(max_messages=16, invisible_seconds=10))
            except BrokerUnavailable:  # the proxy's settings handshake right after start
                await asyncio.sleep(0.5)
    finally:
        await consumer.close()
    return seen


def plain_consumer(*, endpoint: str, group: str, topic: str) -> RocketMQConsumer:
    """A consumer without credentials and a short long-poll, as the tests read topics."""
    return RocketMQConsumer(
        config=configuration(
            endpoint=endpoint, access_key="", secret_key="", namespace="", timeout_seconds=3
        ),
        endpoint=endpoint,
        group=group,
        topic=topic,
        await_seconds=2,
    )


def downstream_results(rocketmq: RocketMQ, names: Names, *, expect: int) -> list[dict[str, Any]]:
    """The result topic as the test's downstream group reads it (see `read_results`)."""
    return asyncio.run(
        read_results(
            endpoint=rocketmq.endpoint,
            group=names.downstream_group,
            topic=names.result_topic,
            expect=expect,
        )
    )


def make_key(redis_server: RedisServer, tenant: str, *flags: str) -> dict[str, str]:
    """A key of `tenant`, made by the real `agentprod keys create` (its JSON answer)."""
    done = subprocess.run(
        [AGENTPROD, "keys", "create", "--tenant", tenant, "--json", *flags],
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    made: dict[str, str] = json.loads(done.stdout)
    return made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback: `/ok` answers 204; `/flaky` answers 500 to the first two
    calls of each task and 204 after; every call is kept."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _ReceiverHandler)
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def calls_to(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(headers, body) for seen, headers, body in self.calls if seen == path]


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        task_id = orjson.loads(body)["task_id"]
        with self.server.lock:
            self.server.calls.append((self.path, headers, body))
            earlier = sum(
                1
                for path, _, seen in self.server.calls
                if path == self.path and orjson.loads(seen)["task_id"] == task_id
            )
        failing = self.path == "/flaky" and earlier <= 2
        self.send_response(500 if failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        del args
