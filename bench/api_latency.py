"""API accept latency at fixed request rates (open loop) on the real stack.

Requests are fired on a fixed schedule whatever the answers do, and each latency is measured
from its scheduled send time, so a slow server cannot hide its queueing (no coordinated
omission). Prints one row per rate: sent, errors, achieved rate, p50/p99/max in ms.

    python -m bench.api_latency [--rates 100,200,400] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.stack import percentile, real_stack


async def fire(url: str, *, rate: float, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            try:
                body = {"user_id": "bench", "content": f"task {i}"}
                async with client.post("/tasks", json=body) as answer:
                    await answer.read()
                    if answer.status != 202:
                        errors += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter()
        total = int(rate * seconds)
        tasks = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,400")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with real_stack() as stack:
        topic, group = stack.pipeline()
        api = stack.launch("api", stack.env(topic, group))
        stack.launch("worker", stack.env(topic, group, AGENT="echo", WORKER_CONCURRENCY="16"))
        asyncio.run(fire(api.url, rate=50, seconds=2))  # warm-up
        print(
            f"{'rate/s':>7} {'sent':>6} {'errors':>6} {'achieved/s':>10} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        )
        for rate in rates:
            latencies, errors, elapsed = asyncio.run(fire(api.url, rate=rate, seconds=args.seconds))
            ms = [value * 1000 for value in latencies]
            sent = len(latencies) + errors
            print(
                f"{rate:7.0f} {sent:6d} {errors:6d} {len(latencies) / elapsed:10.1f} "
                f"{percentile(ms, 0.5):8.1f} {percentile(ms, 0.99):8.1f} "
                f"{max(ms, default=float('nan')):8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
