"""Real servers for the integration tests: one RocketMQ 5 (namesrv + local-mode proxy with its
embedded broker) and one Redis per session, on ports clear of `make services-up`.

Each test gets its own topics and consumer group (`names`), so tests never see each other's
messages; `launch` starts `agentprod` processes and stops them at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from harness.apps import AgentprodProcess, free_port
from harness.kubernetes import ControlPlane, ensure_binaries
from harness.redis import RedisServer
from harness.rocketmq import RocketMQ

from tests.integration.helpers import MAX_RETRIES, Launch, Names

CRD = Path(__file__).resolve().parents[2] / "crds" / "agentpipelines.agentprod.io.yaml"


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def names(rocketmq: RocketMQ) -> Names:
    suffix = uuid.uuid4().hex[:10]
    created = Names(
        request_topic=f"TopicTest_{suffix}",
        result_topic=f"TopicResult_{suffix}",
        group=f"GID_AGENT_{suffix}",
        downstream_group=f"GID_DOWNSTREAM_{suffix}",
    )
    rocketmq.create_topic(created.request_topic, queues=8)
    rocketmq.create_topic(f"{created.request_topic}-high", queues=8)  # priority: high
    rocketmq.create_topic(created.result_topic, queues=8)
    rocketmq.create_group(created.group, max_retries=MAX_RETRIES)
    rocketmq.create_group(created.downstream_group)
    return created


@pytest.fixture
def base_env(rocketmq: RocketMQ, redis_server: RedisServer, names: Names) -> dict[str, str]:
    """The environment an operator would give the processes (the seed's variable names)."""
    return {
        "REDIS_URL": redis_server.url,
        "MQ_ENDPOINT": rocketmq.endpoint,
        "MQ_NAMESRV": rocketmq.namesrv_addr,
        "MQ_TOPIC_REQUEST": names.request_topic,
        "MQ_TOPIC_RESULT": names.result_topic,
        "MQ_GROUP_AGENT": names.group,
        "MQ_MAX_RETRIES": str(MAX_RETRIES),
        "WORKER_INVISIBLE_SECONDS": "10",
        "WORKER_AWAIT_SECONDS": "5",
        "WORKER_RETRY_BACKOFF_SECONDS": "0.5",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "20",
        "LOG_LEVEL": "INFO",
        # The suites of the task path call the API without keys; tests/integration/test_auth.py
        # and the fuzz run launch it with API_AUTH=required (the default outside these tests).
        "API_AUTH": "off",
        "AGENTPROD_TEST_AGENTS": "true",
    }


@pytest.fixture
def launch(tmp_path: Path, base_env: dict[str, str]) -> Iterator[Launch]:
    """`launch("api" | "worker", **env)` → a healthy process; all are stopped at teardown."""
    started: list[AgentprodProcess] = []
    counter = iter(range(1000))

    def start(command: str, wait: bool = True, **env: str) -> AgentprodProcess:
        process = AgentprodProcess(
            command=command,
            env=base_env | env,
            log_dir=tmp_path,
            name=f"{command}-{next(counter)}",
        )
        started.append(process)
        if wait:
            process.wait_healthy()
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.terminate()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own with AOF (fsync always), as production needs: free to stop
    and restart without losing records."""
    server = RedisServer(home=tmp_path / "redis", port=free_port(), persistent=True)
    server.start()
    yield server
    if server.running:
        server.stop()


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A kube-apiserver (no controllers) with the AgentPipeline CRD established, per module."""
    plane = ControlPlane(
        home=tmp_path_factory.mktemp("apiserver"),
        bin_dir=ensure_binaries(node=False),
        controller_manager=False,
    )
    plane.start()
    plane.kubectl("apply", "--server-side", "-f", str(CRD))
    plane.kubectl("wait", "--for=condition=Established", "crd/agentpipelines.agentprod.io")
    yield plane
    plane.stop()
