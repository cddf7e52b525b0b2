"""What an API key check and the rate limiter add per request, on the real stack.

Two API processes on the same Redis + RocketMQ: one with `API_AUTH=off`, one with keys required
(a key made with `agentprod keys create`, a rate far above the load so nothing is refused).
Each round sends the same sequential requests to both, alternating which goes first:
`GET /tasks/{id}` of an existing task (one Redis read without keys; with keys also the key read
and the limiter's two calls) and `POST /tasks` (the whole accept path). Prints p50/p99 per
mode and the difference, median over rounds.

    python -m bench.auth_overhead [--requests 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time

import aiohttp
from harness.apps import AGENTPROD

from bench.stack import percentile, real_stack

UNLIMITED = ("--rate", "10000000/minute", "--max-queued", "10000000")  # nothing refused


async def timed(url: str, headers: dict[str, str], *, requests: int, post: bool) -> list[float]:
    latencies = []
    async with aiohttp.ClientSession(url, headers=headers) as client:
        created = await client.post("/tasks", json={"user_id": "bench", "content": "x"})
        task_id = (await created.json())["task_id"]
        for i in range(requests):
            started = time.perf_counter()
            if post:
                answer = await client.post("/tasks", json={"user_id": "bench", "content": f"t{i}"})
            else:
                answer = await client.get(f"/tasks/{task_id}")
            await answer.read()
            if answer.status not in (200, 202):
                raise RuntimeError(f"{answer.status}: {await answer.text()}")
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with real_stack() as stack:
        topic, group = stack.pipeline()
        open_api = stack.launch("api", stack.env(topic, group))
        keyed_api = stack.launch("api", stack.env(topic, group, API_AUTH="required"))
        made = subprocess.run(
            [AGENTPROD, "keys", "create", "--tenant", "bench", "--json", *UNLIMITED],
            env={"REDIS_URL": stack.redis.url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(made.stdout)["key"]
        sides = {
            "open": (open_api.url, {}),
            "key+limiter": (keyed_api.url, {"Authorization": f"Bearer {key}"}),
        }
        for post in (False, True):
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            for round_ in range(args.rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for name in order:
                    url, headers = sides[name]
                    ms = asyncio.run(timed(url, headers, requests=args.requests, post=post))
                    figures[name].append((percentile(ms, 0.5), percentile(ms, 0.99)))
            what = "POST /tasks" if post else "GET /tasks/{id}"
            medians = {
                name: (
                    statistics.median(p50 for p50, _ in rows),
                    statistics.median(p99 for _, p99 in rows),
                )
                for name, rows in figures.items()
            }
            for name, (p50, p99) in medians.items():
                print(f"{what:16} {name:12} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms", flush=True)
            extra50 = medians["key+limiter"][0] - medians["open"][0]
            extra99 = medians["key+limiter"][1] - medians["open"][1]
            print(f"{what:16} {'overhead':12} p50 {extra50:+6.2f} ms  p99 {extra99:+6.2f} ms")


if __name__ == "__main__":
    main()
