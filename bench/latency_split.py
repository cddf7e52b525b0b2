"""Where a task's time goes on an idle agentprod worker, stage by stage from submit to done.

One `agentprod api` and one `agentprod worker` on the real stack: the `echo` agent, or with
``--agent chat`` the chat agent against the loopback model server of `bench.compare_llm`
(1-2 s per call). ``--rounds`` bursts of ``--burst`` tasks go to an idle worker (each burst
ends, then 2 s of quiet). Per task, from the client's send time, the task record's timestamps
and (chat) the result's ``model_latency_ms``; the client and the servers share one clock:

- submit → record: the HTTP request to the API and its record write;
- record → claim: the send to RocketMQ, the delivery, the worker's receive and its claim;
- claim → done: the agent's run and the finish (chat: without the model call);
- model call - delay (chat): the model client's time above the server's own delay.

Printed: p50 and p90 per stage, in ms, and the whole overhead (done - submit - server delay).
``--claims`` also prints each burst's record and claim times, in ms after its first send.

    python -m bench.latency_split [--agent echo|chat] [--burst 32] [--rounds 5] [--claims]
        [VAR=value ...]

Extra ``VAR=value`` arguments go into the worker's environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from agentprod import keys

from bench import compare_llm
from bench.compare_celery import _post_all
from bench.stack import percentile, real_stack

FIELDS = ("status", "created_at", "started_at", "finished_at", "result", "error")


def stages(sent: float, record: dict[str, Any], server_delay: float | None) -> dict[str, float]:
    """One task's stages in ms (pure): `record` holds the task hash's FIELDS, decoded."""
    created, started, finished = (
        float(record[k]) for k in ("created_at", "started_at", "finished_at")
    )
    out = {
        "submit → record": 1000 * (created - sent),
        "record → claim": 1000 * (started - created),
        "claim → done": 1000 * (finished - started),
        "overhead": 1000 * (finished - sent - (server_delay or 0.0)),
    }
    if server_delay is not None:
        model_ms = float(json.loads(record["result"]).get("model_latency_ms") or 0.0)
        out["claim → done"] -= model_ms
        out["model call - delay"] = model_ms - 1000 * server_delay
    return out


def _claims(sent: Sequence[float], records: Sequence[dict[str, Any]]) -> str:
    first = min(sent)
    created = sorted(round(1000 * (float(r["created_at"]) - first)) for r in records)
    claims = sorted(round(1000 * (float(r["started_at"]) - first)) for r in records)
    return f"records {created[0]}-{created[-1]} ms, claims {claims}"


def _wait_done(client: redis.Redis, ids: Sequence[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pipe = client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(keys.task(task_id), FIELDS)
        records = [dict(zip(FIELDS, reply, strict=True)) for reply in pipe.execute()]
        failed = [r for r in records if r["status"] == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks failed: {failed[0]['error']}")
        if all(r["status"] == "done" for r in records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"tasks not done after {timeout:.0f}s")
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", choices=("echo", "chat"), default="echo")
    parser.add_argument("--burst", type=int, default=32, help="tasks posted at once")
    parser.add_argument("--rounds", type=int, default=5, help="bursts, each on an idle worker")
    parser.add_argument("--concurrency", type=int, default=64, help="WORKER_CONCURRENCY")
    parser.add_argument("--claims", action="store_true", help="print each burst's claim times")
    parser.add_argument("env", nargs="*", help="VAR=value for the worker")
    args = parser.parse_args(argv)
    if args.burst < 1 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--burst, --rounds and --concurrency must be at least 1")
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    model_args = argparse.Namespace(min_seconds=1.0, max_seconds=2.0, timeout=600)
    with real_stack() as stack:
        model = compare_llm.ModelServer(stack.home, model_args) if args.agent == "chat" else None
        try:
            topic, group = stack.pipeline()
            api = stack.launch("api", stack.env(topic, group))
            if model is not None:
                env = compare_llm.chat_worker_env(
                    stack, topic, group, model_url=model.url, concurrency=args.concurrency, **extra
                )
            else:
                env = stack.env(
                    topic, group, AGENT="echo", WORKER_CONCURRENCY=str(args.concurrency), **extra
                )
            stack.launch("worker", env)
            client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
            split: dict[str, list[float]] = {}
            for number in range(args.rounds + 1):  # round 0 warms up, not counted
                contents = compare_llm._contents(args.burst, f"{uuid.uuid4().hex[:8]} {number}")
                if model is not None:
                    bodies = compare_llm._bodies(contents)
                else:
                    bodies = [{"user_id": "bench", "content": c, "agent": "echo"} for c in contents]
                ids, sent, _ = asyncio.run(_post_all(api.url, bodies, compare_llm.CLIENTS))
                records = _wait_done(client, ids, timeout=120)
                delays = compare_llm._delays(contents, model_args) if model else [None] * len(ids)
                if number and args.claims:
                    print(_claims(sent, records), flush=True)
                if number:
                    for at, record, delay in zip(sent, records, delays, strict=True):
                        for stage, ms in stages(at, record, delay).items():
                            split.setdefault(stage, []).append(ms)
                time.sleep(2)
            client.close()
        finally:
            if model is not None:
                model.stop()
    print(
        f"{args.agent}: {args.rounds} bursts of {args.burst} on an idle worker "
        f"(concurrency {args.concurrency})"
    )
    print(f"{'stage':<20} {'p50 ms':>8} {'p90 ms':>8}")
    for stage, values in split.items():
        print(f"{stage:<20} {percentile(values, 0.5):8.1f} {percentile(values, 0.9):8.1f}")


if __name__ == "__main__":
    main()
