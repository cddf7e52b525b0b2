"""The real stack for benchmarks: RocketMQ 5 + Redis on their own ports, agentprod processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from harness import paths
from harness.apps import AgentprodProcess
from harness.redis import RedisServer, ensure_redis_server
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars

#: Clear of `make services-up` and of the test session; BENCH_PORT_SHIFT moves a second
#: benchmark run (or one beside another checkout's tests) out of the way.
BENCH_PORT_SHIFT = int(os.environ.get("BENCH_PORT_SHIFT", "40"))


class Stack:
    def __init__(self, *, home: Path, mq: RocketMQ, redis: RedisServer) -> None:
        self.home = home
        self.mq = mq
        self.redis = redis
        self.processes: list[AgentprodProcess] = []

    def env(self, topic: str, group: str, **extra: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis.url,
            "MQ_ENDPOINT": self.mq.endpoint,
            "MQ_TOPIC_REQUEST": topic,
            "MQ_TOPIC_RESULT": f"{topic}_result",
            "MQ_GROUP_AGENT": group,
            "LOG_LEVEL": "WARNING",
            # Keys off: the benchmarks measure the task path (bench/auth_overhead.py measures
            # what a key check and the rate limiter add per request).
            "API_AUTH": "off",
            "AGENTPROD_TEST_AGENTS": "true",  # the benches run the echo and sleep agents
        } | extra

    def pipeline(self) -> tuple[str, str]:
        """Fresh request/result topics and group; returns (request topic, group)."""
        suffix = uuid.uuid4().hex[:8]
        topic, group = f"Bench_{suffix}", f"GID_BENCH_{suffix}"
        self.mq.create_topic(topic, queues=8)
        self.mq.create_topic(f"{topic}-high", queues=8)  # the priority: high tasks' topic
        self.mq.create_topic(f"{topic}_result", queues=8)
        self.mq.create_group(group)
        return topic, group

    def launch(self, command: str, env: dict[str, str]) -> AgentprodProcess:
        process = AgentprodProcess(
            command=command, env=env, log_dir=self.home, name=f"{command}-{len(self.processes)}"
        )
        self.processes.append(process)
        process.wait_healthy()
        return process

    def stop_processes(self) -> None:
        for process in self.processes:
            if process.process.poll() is None:
                process.terminate()
        self.processes.clear()


@contextlib.contextmanager
def real_stack() -> Iterator[Stack]:
    ensure_redis_server()
    lib = ensure_jars(cache=paths.cache_dir())
    with tempfile.TemporaryDirectory(prefix="agentprod-bench-") as tmp:
        home = Path(tmp)
        ports = RocketMQPorts.for_tests(shift=BENCH_PORT_SHIFT)
        mq = RocketMQ(home=home / "rocketmq", lib=lib, ports=ports)
        redis = RedisServer(home=home / "redis", port=ports.namesrv + 100)
        redis.start()
        mq.start()
        stack = Stack(home=home, mq=mq, redis=redis)
        try:
            yield stack
        finally:
            stack.stop_processes()
            mq.stop()
            redis.stop()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    cut = statistics.quantiles(values, n=1000, method="inclusive")
    return cut[min(len(cut) - 1, max(0, round(fraction * 1000) - 1))]


def py_spy(
    pid: int, out: Path, *, rate: int = 100, native: bool = False
) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` into `out` (raw folded stacks) until SIGINT."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "-p", str(pid), "-o", str(out), "--format", "raw", "-r", str(rate)]
    if native:
        argv.append("--native")
    argv.append("--nonblocking")  # no pausing the process per sample
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
