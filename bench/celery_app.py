"""The Celery side of the peer comparison (`bench.compare_celery`): one task running agentprod's
own agents, so both systems do identical work per task.

Broker and result backend are Redis (``BENCH_CELERY_BROKER``, ``BENCH_CELERY_BACKEND``); the
settings are the documented ones for at-least-once work: ``task_acks_late`` (ack after the task
returned, like agentprod's ack after `done` is stored) with ``worker_prefetch_multiplier=1``
(a worker holds at most `concurrency` unacked messages — also what agentprod's worker does, which
receives only as many messages as it has free slots). The agents are async; each pool thread
keeps one event loop and runs the agent's coroutine to completion on it.

    celery -A bench.celery_app worker --pool threads --concurrency 8
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from agentprod.agents.base import Agent, AgentTask
from agentprod.agents.echo import EchoAgent
from agentprod.agents.sleep import SleepAgent
from agentprod.models import JSON
from celery import Celery

TASK_NAME = "bench.run_agent"

app = Celery(
    "agentprod_bench",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/1"),
)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "1")),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

# Same construction as agentprod's worker: one agent object per process, from a config dict
# (sleep's default `seconds` is 0.02, the 20 ms of the benchmark).
AGENTS: dict[str, Agent] = {"echo": EchoAgent({}), "sleep": SleepAgent({})}
_local = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None:
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def _run_agent(task: Any, agent: str, content: str, metadata: dict[str, JSON]) -> JSON:
    request = task.request
    job = AgentTask(
        task_id=str(request.id),
        user_id="bench",
        content=content,
        metadata=metadata,
        attempt=int(request.retries or 0) + 1,
    )
    return _loop().run_until_complete(AGENTS[agent].run(job))


run_agent = app.task(name=TASK_NAME, bind=True)(_run_agent)
