"""Real servers shared by the integration and e2e tiers: one RocketMQ 5 (namesrv + local-mode
proxy with its embedded broker) and one Redis per session, on ports clear of
`make services-up`; both are stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import paths
from harness.apps import free_port
from harness.redis import RedisServer, ensure_redis_server
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars


@pytest.fixture(scope="session")
def rocketmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQ]:
    lib = ensure_jars(cache=paths.cache_dir())
    server = RocketMQ(
        home=tmp_path_factory.mktemp("rocketmq"), lib=lib, ports=RocketMQPorts.for_tests()
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    ensure_redis_server()
    server = RedisServer(home=tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    yield server
    server.stop()
