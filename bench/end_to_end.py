"""End-to-end throughput with the `echo` agent on the real stack (API → RocketMQ → workers →
Redis → result topic).

Posts N tasks with a fixed number of concurrent clients, waits until every task is done, and
prints the submit rate, the completion rate (first submit to last finish) and the per-task
latency (created → finished) p50/p99.

    python -m bench.end_to_end [--tasks 2000] [--workers 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import redis
from agentprod import keys

from bench.stack import percentile, real_stack


async def submit_all(url: str, count: int, clients: int) -> list[str]:
    ids: list[str] = []
    queue = iter(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def loop() -> None:
            for i in queue:
                answer = await client.post(
                    "/tasks", json={"user_id": "bench", "content": f"task {i}"}
                )
                answer.raise_for_status()
                ids.append(answer.json()["task_id"])

        await asyncio.gather(*(loop() for _ in range(clients)))
    return ids


def wait_done(client: redis.Redis, ids: list[str], timeout: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    pending = list(ids)
    times: list[tuple[float, float]] = []
    while pending and time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for task_id in pending:
            pipe.hmget(keys.task(task_id), "status", "created_at", "finished_at")
        still = []
        for task_id, (status, created, finished) in zip(pending, pipe.execute(), strict=True):
            if status == "done":
                times.append((float(created), float(finished)))
            else:
                still.append(task_id)
        pending = still
        if pending:
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} tasks not done after {timeout}s")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="per worker")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    args = parser.parse_args()
    with real_stack() as stack:
        topic, group = stack.pipeline()
        api = stack.launch("api", stack.env(topic, group))
        for _ in range(args.workers):
            stack.launch(
                "worker",
                stack.env(topic, group, AGENT="echo", WORKER_CONCURRENCY=str(args.concurrency)),
            )
        asyncio.run(submit_all(api.url, 50, 8))  # warm-up
        client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
        started = time.time()
        ids = asyncio.run(submit_all(api.url, args.tasks, args.clients))
        submitted = time.time() - started
        times = wait_done(client, ids, timeout=600)
        last_finish = max(finished for _, finished in times)
        latencies = [(finished - created) * 1000 for created, finished in times]
        print(
            f"tasks={args.tasks} workers={args.workers}x{args.concurrency} clients={args.clients}"
        )
        print(f"submit: {args.tasks / submitted:8.1f} tasks/s")
        print(
            f"complete: {args.tasks / (last_finish - started):8.1f} tasks/s "
            f"(all done {last_finish - started:.1f}s after the first submit)"
        )
        print(
            f"latency created→finished: p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p99 {percentile(latencies, 0.99):.1f} ms"
        )


if __name__ == "__main__":
    main()
