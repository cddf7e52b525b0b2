"""The tiers by path, and the real servers the integration and e2e tiers share.

Tiers: every test under tests/integration is marked `integration`, under tests/e2e `e2e`, under
tests/chart `chart`, and the rest `unit` — by one collection hook, so `-m "not e2e"` or
`-m unit` select a tier and a test can't sit in a tier without its mark. Servers: one RocketMQ 5
(namesrv + local-mode proxy with its embedded broker) and one Redis per session, on ports clear
of `make services-up`; both are stopped at the end of the session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import paths
from harness.apps import free_port
from harness.lanes import needed_build, rank_of_test_file, run_step
from harness.redis import RedisServer, ensure_redis_server
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

TESTS = Path(__file__).resolve().parent
TIERS = {"integration": "integration", "e2e": "e2e", "chart": "chart", "unit": "unit"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, and run first the files that need no build: `make test`
    builds the rest meanwhile (harness.lanes; a stable sort, so a file's tests stay together
    and in order)."""
    for item in items:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        item.add_marker(getattr(pytest.mark, TIERS.get(folder, "unit")))
    items.sort(key=lambda item: rank_of_test_file(_relative(item)))


def _relative(item: pytest.Item) -> str:
    return Path(item.path).resolve().relative_to(TESTS.parent).as_posix()


_BUILDS_READY: set[str] = set()


@pytest.hookimpl(tryfirst=True, wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """Before the first test that needs a build, wait for it (`python -m harness <build>`: under
    the build's lock, so behind `make test`'s background build, then cached). Outside the
    test's own timeout, which starts inside this wrapper."""
    build = needed_build(_relative(item))
    if build is not None and build not in _BUILDS_READY:
        _BUILDS_READY.add(build)
        started = time.monotonic()
        returncode, output = run_step(build)
        took = time.monotonic() - started
        if returncode != 0 or took > 5:
            status = "ready" if returncode == 0 else f"FAILED (exit {returncode})"
            terminal = item.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(f"\n[{build} {status} after {took:.0f} s of waiting]")
                if returncode != 0:
                    terminal.write_line(output[-4000:])
    return (yield)


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
