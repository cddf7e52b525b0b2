"""Event and cancel latency on the real stack (API → RocketMQ → worker → Redis → SSE client).

Event latency: `--tasks` `sleep` tasks of `--steps` steps each run while one SSE client per
task follows GET /tasks/{id}/events; for every event the worker emitted while the client was
connected (running, each step, done) the latency is the client's receive time minus the
event's `at` (the worker's clock at the emit; same host, same clock).

Cancel latency: `--cancels` long tasks, each cancelled once it runs; the latency is from just
before POST /tasks/{id}/cancel to the record's `finished_at` (stored by the worker when it
settled the task `cancelled`, the agent's coroutine stopped and its slot freed).

    python -m bench.task_control [--tasks 32] [--steps 20] [--cancels 20]
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


if __name__ == "__main__":
    main()
