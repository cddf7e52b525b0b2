"""Where a model-bound agentprod worker spends its time: py-spy profile plus per-task figures.

One `agentprod api`, one `agentprod worker` (the `chat` agent, ``WORKER_CONCURRENCY`` =
``--level``) and the loopback model server of `bench.compare_llm` (1-2 s per call) on the real
stack. After a warm-up of 64 tasks, ``6 x level`` tasks are queued while the worker runs (the
API's pace feeds it), or with ``--backlog`` before a fresh worker starts (it drains them, as in
`bench.compare_llm`), and py-spy records the worker (raw folded stacks, `--out`; ``--native``
adds C frames, where the cyclic collector shows) until they are done. Printed: tasks/s, worker
CPU per task, how many slots were busy, the worker's garbage collections per generation, and
the mean run time of a task (claim to finish) against the model server's own delay, split into
the model call as the worker timed it and the agent's work around it.

    python -m bench.profile_worker --level 256 --out worker.folded [--backlog] [VAR=value ...]

Extra ``VAR=value`` arguments go into the worker's environment (e.g. ``LLM_HTTP_TRANSPORT=httpx``
to profile the SDK's default transport).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from agentprod import keys

from bench import compare_llm
from bench.compare_celery import _post_all
from bench.stack import py_spy, real_stack

WARMUP = 64
BACKLOG_PER_SLOT = 6


def _in_flight(url: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=2).text.splitlines():
        if line.startswith("agentprod_worker_in_flight "):
            return float(line.split()[1])
    return None


def gc_collections(metrics_text: str) -> dict[int, float]:
    """`python_gc_collections_total` per generation from a Prometheus exposition (pure)."""
    counts: dict[int, float] = {}
    prefix = 'python_gc_collections_total{generation="'
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            generation, _, value = line[len(prefix) :].partition('"} ')
            counts[int(generation)] = float(value)
    return counts


def redis_calls(before: dict[str, Any], after: dict[str, Any]) -> Counter[str]:
    """Calls per command between two `INFO commandstats` readings (pure)."""
    calls: Counter[str] = Counter()
    for name, stats in after.items():
        earlier = before.get(name, {}).get("calls", 0)
        if stats["calls"] > earlier:
            calls[name.removeprefix("cmdstat_")] = stats["calls"] - earlier
    return calls


def receive_totals(metrics_text: str, lane: str = "normal") -> tuple[float, float, float]:
    """(receives, their seconds, messages they brought) of one lane, from a worker's
    Prometheus exposition (pure)."""
    wanted = {
        f'agentprod_worker_receive_seconds_count{{lane="{lane}"}}': 0,
        f'agentprod_worker_receive_seconds_sum{{lane="{lane}"}}': 1,
        f'agentprod_worker_received_total{{lane="{lane}"}}': 2,
    }
    totals = [0.0, 0.0, 0.0]
    for line in metrics_text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            totals[wanted[name]] = float(value)
    return totals[0], totals[1], totals[2]


def _gc_counts(url: str) -> dict[int, float]:
    return gc_collections(httpx.get(f"{url}/metrics", timeout=5).text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=256, help="WORKER_CONCURRENCY")
    parser.add_argument("--out", type=Path, required=True, help="py-spy's raw folded stacks")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--backlog", action="store_true", help="queue the tasks before a fresh worker starts"
    )
    parser.add_argument("--native", action="store_true", help="py-spy records C frames too")
    parser.add_argument("env", nargs="*", help="VAR=value for the worker")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    model_args = argparse.Namespace(min_seconds=1.0, max_seconds=2.0, timeout=600)
    with real_stack() as stack:
        model = compare_llm.ModelServer(stack.home, model_args)
        try:
            topic, group = stack.pipeline()
            api = stack.launch("api", stack.env(topic, group))
            env = compare_llm.chat_worker_env(
                stack, topic, group, model_url=model.url, concurrency=args.level, **extra
            )
            client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
            read = compare_llm._AgentprodRead()
            worker = stack.launch("worker", env)
            run = uuid.uuid4().hex[:8]
            bodies = compare_llm._bodies(compare_llm._contents(WARMUP, run))
            ids, _, _ = asyncio.run(_post_all(api.url, bodies, compare_llm.CLIENTS))
            compare_llm._poll(client, ids, read, timeout=120)

            contents = compare_llm._contents(BACKLOG_PER_SLOT * args.level, run + "b")
            bodies = compare_llm._bodies(contents)
            if args.backlog:
                worker.terminate()
            ids, _, _ = asyncio.run(_post_all(api.url, bodies, compare_llm.CLIENTS))
            if args.backlog:
                worker = stack.launch("worker", env)
            process = psutil.Process(worker.process.pid)
            cpu_before = sum(process.cpu_times()[:2])
            gc_before = _gc_counts(worker.url)
            commands_before = client.info("commandstats")
            receives_before = receive_totals(httpx.get(f"{worker.url}/metrics", timeout=5).text)
            profiler = py_spy(worker.process.pid, args.out, rate=args.rate, native=args.native)
            busy: list[float] = []
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.5):
                    value = _in_flight(worker.url)
                    if value is not None:
                        busy.append(value)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            times = compare_llm._poll(client, ids, read, timeout=600)
            done.set()
            cpu = sum(process.cpu_times()[:2]) - cpu_before
            commands = redis_calls(commands_before, client.info("commandstats"))
            receives_after = receive_totals(httpx.get(f"{worker.url}/metrics", timeout=5).text)
            receives, receive_seconds, received = (
                after - before
                for after, before in zip(receives_after, receives_before, strict=True)
            )
            gc_after = _gc_counts(worker.url)
            collections = {g: gc_after[g] - gc_before.get(g, 0.0) for g in sorted(gc_after)}
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)

            runs = [finish - start for start, finish in times]
            model_ms, agent_ms = [], []
            for task_id in ids[::10]:
                raw = client.hget(keys.task(task_id), "result")
                if raw:
                    result = json.loads(str(raw))
                    model_ms.append(float(result.get("model_latency_ms") or 0))
                    agent_ms.append(float(result.get("latency_ms") or 0))
            delays = compare_llm._delays(contents, model_args)
            rate = compare_llm.throughput([s for s, _ in times], [f for _, f in times])
            busy.sort()
            print(
                f"level {args.level}: {len(ids)} tasks, {rate:.1f} tasks/s, worker CPU "
                f"{1000 * cpu / len(ids):.2f} ms/task, slots busy p50 "
                f"{busy[len(busy) // 2] if busy else float('nan'):.0f}, garbage collections "
                + ", ".join(f"gen{g} {n:.0f}" for g, n in collections.items())
                + "\n"
                f"per task (mean): model server delay {1000 * statistics.mean(delays):.0f} ms, "
                f"model call {statistics.mean(model_ms):.0f} ms, agent run "
                f"{statistics.mean(agent_ms):.0f} ms, claim to finish "
                f"{1000 * statistics.mean(runs):.0f} ms\n"
                f"receives: {receives:.0f}, {received / max(receives, 1):.1f} messages and "
                f"{1000 * receive_seconds / max(receives, 1):.0f} ms each (mean)\n"
                f"Redis calls per task (the worker's, with the model's usage ledger): "
                f"{sum(commands.values()) / len(ids):.2f} = "
                + ", ".join(f"{name} {n / len(ids):.2f}" for name, n in commands.most_common())
                + f"\nprofile: {args.out}"
            )
            client.close()
        finally:
            model.stop()


if __name__ == "__main__":
    main()
