"""Event and cancel latency on the real stack (API → RocketMQ → worker → Redis → SSE client).

Event latency: `--tasks` `sleep` tasks of `--steps` steps each run while one SSE client per
task follows GET /tasks/{id}/events; for every event the worker emitted while the client was
connected (running, each step, done) the latency is the client's receive time minus the
event's `at` (the worker's clock at the emit; same host, same clock).

Cancel latency: `--cancels` long tasks, each cancelled once it runs; the latency is from just
before POST /tasks/{id}/cancel to the record's `finished_at` (stored by the worker when it
settled the task `cancelled`, the agent's coroutine stopped and its slot freed).

Priority: a backlog of `--backlog` normal `sleep` tasks (1 s each) fills the worker's
slots, then `--high` `priority: high` tasks are submitted, one every 0.1 s; the figure is each
task's queue wait (`started_at - created_at`): high ones against the normal ones submitted
just before them, and how much of the normal backlog still waited when the last high task
started.

    python -m bench.task_control [--tasks 32] [--steps 20] [--cancels 20] [--backlog 640]
        [--high 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

import httpx
import orjson

from bench.stack import percentile, real_stack


async def follow(client: httpx.AsyncClient, task_id: str, lags: list[float]) -> None:
    connected = time.time()
    async with client.stream("GET", f"/tasks/{task_id}/events", timeout=120) as answer:
        answer.raise_for_status()
        async for line in answer.aiter_lines():
            if not line.startswith("data: "):
                continue
            received = time.time()
            event = orjson.loads(line[6:])
            if event["type"] == "end":
                return
            if event["at"] >= connected:  # emitted live, not replayed history
                lags.append(received - event["at"])


async def event_latency(url: str, *, tasks: int, steps: int) -> list[float]:
    lags: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(n: int) -> None:
            answer = await client.post(
                "/tasks",
                json={
                    "user_id": "bench",
                    "content": f"task {n}",
                    "metadata": {"sleep_seconds": steps * 0.05, "steps": steps},
                },
            )
            answer.raise_for_status()
            await follow(client, answer.json()["task_id"], lags)

        await asyncio.gather(*(one(n) for n in range(tasks)))
    return lags


async def cancel_latency(url: str, *, count: int) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for n in range(count):
            answer = await client.post(
                "/tasks",
                json={
                    "user_id": "bench",
                    "content": f"long {n}",
                    "metadata": {"sleep_seconds": 60, "steps": 600},
                },
            )
            task_id = answer.raise_for_status().json()["task_id"]
            while (await client.get(f"/tasks/{task_id}")).json()["status"] != "running":
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            asked = time.time()
            (await client.post(f"/tasks/{task_id}/cancel")).raise_for_status()
            while True:
                view = (await client.get(f"/tasks/{task_id}")).json()
                if view["status"] == "cancelled":
                    break
                await asyncio.sleep(0.01)
            finished_at = datetime.fromisoformat(view["finished_at"]).timestamp()
            latencies.append(finished_at - asked)
    return latencies


async def priority_waits(
    url: str, *, backlog: int, high: int
) -> tuple[list[float], list[float], int]:
    """(high tasks' waits, the last `high` normal tasks' waits, normal tasks started after
    the last high one)."""
    limit = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def post(n: int, priority: str) -> str:
            async with limit:
                answer = await client.post(
                    "/tasks",
                    json={
                        "user_id": "bench",
                        "content": f"{priority} {n}",
                        "metadata": {"sleep_seconds": 1.0},
                        "priority": priority,
                    },
                )
                return str(answer.raise_for_status().json()["task_id"])

        normal = list(await asyncio.gather(*(post(n, "normal") for n in range(backlog))))
        urgent = []
        for n in range(high):
            urgent.append(await post(n, "high"))
            await asyncio.sleep(0.1)
        views: dict[str, dict[str, object]] = {}
        for task_id in urgent + normal:
            while True:
                view = (await client.get(f"/tasks/{task_id}")).json()
                if view["status"] == "done":
                    views[task_id] = view
                    break
                await asyncio.sleep(0.05)

    def at(task_id: str, field: str) -> float:
        return datetime.fromisoformat(str(views[task_id][field])).timestamp()

    def wait(task_id: str) -> float:
        return at(task_id, "started_at") - at(task_id, "created_at")

    last_high = max(at(t, "started_at") for t in urgent)
    later = sum(at(t, "started_at") > last_high for t in normal)
    return [wait(t) for t in urgent], [wait(t) for t in normal[-high:]], later


def report(name: str, values: list[float]) -> None:
    ms = [value * 1000 for value in values]
    print(
        f"{name}: n={len(ms)} p50={percentile(ms, 0.5):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
        f"max={max(ms):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=640)
    parser.add_argument("--high", type=int, default=16)
    args = parser.parse_args()
    with real_stack() as stack:
        topic, group = stack.pipeline()
        env = stack.env(
            topic, group, AGENT="sleep", WORKER_CONCURRENCY="32", AGENTPROD_TEST_AGENTS="true"
        )
        api = stack.launch("api", env)
        stack.launch("worker", env)
        report(
            "event latency (worker emit -> SSE client)",
            asyncio.run(event_latency(api.url, tasks=args.tasks, steps=args.steps)),
        )
        report(
            "cancel latency (request -> settled cancelled)",
            asyncio.run(cancel_latency(api.url, count=args.cancels)),
        )
        urgent, normal, later = asyncio.run(
            priority_waits(api.url, backlog=args.backlog, high=args.high)
        )
        report("queue wait of high-priority tasks behind the backlog", urgent)
        report("queue wait of the last normal tasks of the backlog", normal)
        print(f"normal tasks started after the last high one: {later} of {args.backlog}")


if __name__ == "__main__":
    main()
