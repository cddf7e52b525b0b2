"""The tiers by path, and the real servers the integration and e2e tiers share.

Tiers: every test under tests/integration is marked `integration`, under tests/e2e `e2e`, under
tests/chart `chart`, and the rest `unit` — by one collection hook, so `-m "not e2e"` or
`-m unit` select a tier and a test can't sit in a tier without its mark. Servers: one RocketMQ 5
(namesrv + local-mode proxy with its embedded broker) and one Redis per session, on ports clear
of `make services-up`; both are stopped at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import paths
from harness.apps import free_port
from harness.redis import RedisServer, ensure_redis_server
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

TESTS = Path(__file__).resolve().parent
TIERS = {"integration": "integration", "e2e": "e2e", "chart": "chart", "unit": "unit"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        item.add_marker(getattr(pytest.mark, TIERS.get(folder, "unit")))


@pytest.fixture(scope="session")
def rocketmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQ]:
    lib = ensure_jars(cache=paths.cache_dir())
    server = RocketMQ(
        home=tmp_path_factory.mktemp("rocketmq"),
        lib=lib,
        # AGENTPROD_TEST_PORT_SHIFT (a multiple of 100) lets two test sessions run side by side
        ports=RocketMQPorts.for_tests(shift=int(os.environ.get("AGENTPROD_TEST_PORT_SHIFT", "0"))),
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
