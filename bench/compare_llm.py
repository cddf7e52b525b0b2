"""Model-bound tasks: agentprod's async worker vs Celery's pools, per worker process.

Every task asks a loopback OpenAI-compatible server (`bench.llm_server`, its own process) for
one chat completion; the server only waits 1-2 s (a pure function of the task's content, so
both systems see the same delays) and answers. This measures the platform, not a model.

* agentprod: its real stack (`agentprod api` → RocketMQ 5 → one `agentprod worker` with the
  `chat` agent and ``WORKER_CONCURRENCY`` 64/256/1024 → Redis); the agent's whole model path
  (routing, rate limiter, ledger; cache off per task with ``metadata.cache=false``).
* Celery 5 (Redis broker and backend, ``acks_late``, prefetch 1) with the task of
  `bench.celery_llm` (the openai SDK's sync client) in the ``threads`` and ``gevent`` pools at
  the same concurrency, and ``prefork`` at the concurrency that fits agentprod's worker memory
  at that level: ``(budget - parent) // child``, the parent's and a child's PSS calibrated once
  at the start, the budget the PSS of agentprod's most recent worker at that level. The issue's
  comparison is at the same memory, so ``threads`` and ``gevent`` also run as
  ``celery-<pool>@mem``: with the most slots (at most the level) whose measured peak PSS fits
  that budget. The slot count is searched with real runs (at most ``FIT_RUNS``), each guess
  interpolated from the peaks the pool's runs so far measured (`fitted_slots`); the phase
  reports its run with the most slots that fit.

Per (level, system), fresh worker processes: a warm-up worker runs ``min(C, 64)`` tasks and
gives the idle memory, then stops; ``4 C`` tasks are queued with no worker running (agentprod
over HTTP, Celery with ``apply_async``), a new worker starts and drains them while its PSS and
CPU are sampled: throughput = tasks ÷ (last finish - first start, server-side times), CPU per
task = worker CPU seconds ÷ tasks (and the whole stack's, the model server excluded), memory
per in-flight task = (peak - idle) ÷ C. Then, with that worker idle, a burst of ``C / 2``
tasks gives the latency overhead: completion - submit - the server's delay for the task.
Systems alternate per level (the order reverses every round); figures are the median and
range over rounds.

    python -m bench.compare_llm [--rounds 2] [--levels 64,256,1024] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psutil
import redis
from agentprod import keys
from harness.apps import free_port
from harness.redis import RedisServer

from bench.compare_celery import (
    MB,
    CeleryWorker,
    Sampler,
    _celery_env,
    _machine,
    _post_all,
    ratios,
    spread,
)
from bench.llm_server import MODEL, delay_for
from bench.stack import Stack, percentile, real_stack

AGENTPROD = "agentprod"
POOLS = ("threads", "gevent", "prefork")
#: The I/O pools again, with as many slots as fit agentprod's worker memory at that level.
SAME_MEMORY = "@mem"
SIZED_POOLS = ("threads", "gevent")
#: An `@mem` pool's peak may exceed agentprod's by this share and still count as the same memory.
FIT_TOLERANCE = 0.03
#: Runs per `@mem` phase at most, while the slot count that fits the budget is searched.
FIT_RUNS = 4
SYSTEMS = (
    AGENTPROD,
    *(f"celery-{pool}" for pool in POOLS),
    *(f"celery-{pool}{SAME_MEMORY}" for pool in SIZED_POOLS),
)
BACKLOG_PER_SLOT = 4
WARMUP_MAX = 64
POLL_SECONDS = 0.5
CLIENTS = 32
#: After a worker stops, the proxy still holds its last long-poll receive for up to
#: WORKER_AWAIT_SECONDS (5 s): messages sent meanwhile are popped for the gone worker and stay
#: invisible for WORKER_INVISIBLE_SECONDS. The backlog is queued after this wait.
HELD_POLL_SECONDS = 7.0


# --------------------------------------------------------------------------- pure summaries


@dataclass(frozen=True)
class LevelResult:
    """One system at one concurrency level in one round."""

    concurrency: int
    tasks: int
    tasks_per_s: float
    ideal_per_s: float  # concurrency / mean server delay: what a zero-overhead worker reaches
    worker_cpu_ms: float  # per task
    stack_cpu_ms: float  # per task: worker + broker + Redis (+ API), model server excluded
    idle_mb: float
    peak_mb: float
    kb_per_in_flight: float  # (peak - idle) / concurrency
    overhead_p50_ms: float  # completion - submit - server delay, burst of C/2 on an idle worker
    overhead_p99_ms: float


def throughput(starts: Sequence[float], finishes: Sequence[float]) -> float:
    """Tasks per second from the first start to the last finish (server-side times)."""
    if not starts or len(starts) != len(finishes):
        raise ValueError("need one finish per start")
    window = max(finishes) - min(starts)
    return len(finishes) / window if window > 0 else float("nan")


def overheads_ms(
    sent: Sequence[float], finishes: Sequence[float], delays: Sequence[float]
) -> list[float]:
    """Per task: completion - submit - the server's own delay, in ms."""
    return [
        (done - start - delay) * 1000
        for start, done, delay in zip(sent, finishes, delays, strict=True)
    ]


def fits_budget(peak_mb: float, budget_mb: float) -> bool:
    """Within `FIT_TOLERANCE` over the budget is the same memory (agentprod's peak itself
    moves by a few MB from run to run)."""
    return peak_mb <= budget_mb * (1 + FIT_TOLERANCE)


def fitted_slots(budget_mb: float, peaks: Mapping[int, float], cap: int) -> int:
    """The next slot count to try for a thread or greenlet pool to fit a memory budget, from
    the peak PSS (MB) its runs so far measured per slot count (`peaks`, every level's).

    Between the largest count that fits (`fits_budget`) and the next larger one that does not,
    the guess is interpolated linearly; with no count over the budget it is `cap`; with none
    that fits, one slot. A pool's memory is not linear in its slots (a thread pool's first
    threads cost the most), so the guess goes halfway from the linear one to the bracket's
    middle, and a run checks it."""
    limit = budget_mb * (1 + FIT_TOLERANCE)
    fits = [n for n, peak in peaks.items() if fits_budget(peak, budget_mb) and n <= cap]
    if not fits:
        return 1
    low = max(fits)
    over = [n for n, peak in peaks.items() if not fits_budget(peak, budget_mb) and n > low]
    if not over:
        return cap
    high = min(over)  # over the limit where `low` is within it: the step is positive
    linear = low + (limit - peaks[low]) * (high - low) / (peaks[high] - peaks[low])
    return max(low, min(cap, high - 1, math.floor((linear + (low + high) / 2) / 2)))


def best_fit(peaks: Mapping[int, float], budget_mb: float) -> int:
    """Of the slot counts run, the most whose peak fits the budget (else the fewest)."""
    fits = [n for n, peak in peaks.items() if fits_budget(peak, budget_mb)]
    return max(fits) if fits else min(peaks)


def prefork_concurrency(budget_mb: float, parent_mb: float, child_mb: float) -> int:
    """Children of a prefork worker that fit a memory budget (at least one)."""
    if child_mb <= 0:
        raise ValueError("child memory must be positive")
    return max(1, math.floor((budget_mb - parent_mb) / child_mb))


# --------------------------------------------------------------------------- shared pieces


def _contents(count: int, run: str) -> list[str]:
    return [f"{run} task {i}" for i in range(count)]


def _delays(contents: Sequence[str], args: argparse.Namespace) -> list[float]:
    return [delay_for(content, args.min_seconds, args.max_seconds) for content in contents]


def _ideal(concurrency: int, args: argparse.Namespace) -> float:
    return float(concurrency / ((args.min_seconds + args.max_seconds) / 2))


def _poll(
    client: redis.Redis, ids: Sequence[str], read: Any, timeout: float
) -> list[tuple[float, float]]:
    """(start, finish) per task id; `read(pipe, id)` queues a read, `read.parse` decodes it."""
    got: dict[str, tuple[float, float]] = {}
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending:
        pipe = client.pipeline(transaction=False)
        for task_id in pending:
            read(pipe, task_id)
        still = []
        for task_id, reply in zip(pending, pipe.execute(), strict=True):
            times = read.parse(task_id, reply)
            if times is None:
                still.append(task_id)
            else:
                got[task_id] = times
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} tasks not done after {timeout}s")
            time.sleep(POLL_SECONDS)
    return [got[task_id] for task_id in ids]


class _AgentprodRead:
    def __call__(self, pipe: Any, task_id: str) -> None:
        pipe.hmget(keys.task(task_id), "status", "started_at", "finished_at", "error")

    @staticmethod
    def parse(task_id: str, reply: Any) -> tuple[float, float] | None:
        status, started, finished, error = reply
        if status == "failed":
            raise RuntimeError(f"agentprod task {task_id} failed: {error}")
        return (float(started), float(finished)) if status == "done" else None


class _CeleryRead:
    def __call__(self, pipe: Any, task_id: str) -> None:
        pipe.get(f"celery-task-meta-{task_id}")

    @staticmethod
    def parse(task_id: str, raw: Any) -> tuple[float, float] | None:
        meta = json.loads(raw) if raw else {}
        if meta.get("status") == "FAILURE":
            raise RuntimeError(f"celery task {task_id} failed: {meta.get('result')}")
        if meta.get("status") != "SUCCESS":
            return None
        done = datetime.datetime.fromisoformat(meta["date_done"]).timestamp()
        return float(meta["result"]["started"]), done


def _summary(
    *,
    concurrency: int,
    backlog: list[tuple[float, float]],
    sampler: Sampler,
    worker: str,
    overheads: list[float],
    args: argparse.Namespace,
) -> LevelResult:
    tasks = len(backlog)
    stats = sampler.stats[worker]
    stack_cpu = sum(s.cpu_seconds for s in sampler.stats.values())
    return LevelResult(
        concurrency=concurrency,
        tasks=tasks,
        tasks_per_s=throughput([s for s, _ in backlog], [f for _, f in backlog]),
        ideal_per_s=_ideal(concurrency, args),
        worker_cpu_ms=stats.cpu_seconds / tasks * 1000,
        stack_cpu_ms=stack_cpu / tasks * 1000,
        idle_mb=stats.idle_rss_mb,
        peak_mb=stats.peak_rss_mb,
        kb_per_in_flight=max(0.0, stats.peak_rss_mb - stats.idle_rss_mb) * 1024 / concurrency,
        overhead_p50_ms=percentile(overheads, 0.5),
        overhead_p99_ms=percentile(overheads, 0.99),
    )


# --------------------------------------------------------------------------- agentprod


def _bodies(contents: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"user_id": "bench", "content": c, "agent": "chat", "metadata": {"cache": False}}
        for c in contents
    ]


def chat_worker_env(
    stack: Stack, topic: str, group: str, *, model_url: str, concurrency: int, **extra: str
) -> dict[str, str]:
    """A `chat` worker's environment against the benchmark's model server."""
    return stack.env(
        topic,
        group,
        AGENT="chat",
        WORKER_CONCURRENCY=str(concurrency),
        OPENAI_BASE_URL=model_url,
        OPENAI_API_KEY="bench",
        LLM_MODEL_FAST=MODEL,
        **extra,
    )


def run_agentprod(
    stack: Stack, model_url: str, concurrency: int, args: argparse.Namespace
) -> LevelResult:
    topic, group = stack.pipeline()
    api = stack.launch("api", stack.env(topic, group))
    env = chat_worker_env(stack, topic, group, model_url=model_url, concurrency=concurrency)
    client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    read = _AgentprodRead()
    run = uuid.uuid4().hex[:8]
    try:
        warm = stack.launch("worker", env)
        sampler = Sampler({"worker": warm.process.pid}, pss=True)
        ids, _, _ = asyncio.run(
            _post_all(api.url, _bodies(_contents(min(concurrency, WARMUP_MAX), run)), CLIENTS)
        )
        _poll(client, ids, read, timeout=120)
        time.sleep(1)
        sampler.record_idle()
        idle = sampler.stats["worker"].idle_rss_mb
        warm.terminate()
        time.sleep(HELD_POLL_SECONDS)

        contents = _contents(BACKLOG_PER_SLOT * concurrency, run + "b")
        ids, _, _ = asyncio.run(_post_all(api.url, _bodies(contents), CLIENTS))
        pids = {"worker": 0, "api": api.process.pid}
        pids |= {f"rocketmq {n}": p for n, p in stack.mq.pids().items() if p is not None}
        if stack.redis.pid is not None:
            pids["redis"] = stack.redis.pid
        worker = stack.launch("worker", env)
        pids["worker"] = worker.process.pid
        sampler = Sampler(pids, pss=True)
        sampler.start()
        backlog = _poll(client, ids, read, timeout=args.timeout)
        sampler.stop()
        sampler.stats["worker"].idle_rss_mb = idle

        contents = _contents(max(1, concurrency // 2), run + "l")
        ids, sent, _ = asyncio.run(_post_all(api.url, _bodies(contents), CLIENTS))
        finishes = [f for _, f in _poll(client, ids, read, timeout=args.timeout)]
        overheads = overheads_ms(sent, finishes, _delays(contents, args))
    finally:
        client.close()
        stack.stop_processes()
    return _summary(
        concurrency=concurrency,
        backlog=backlog,
        sampler=sampler,
        worker="worker",
        overheads=overheads,
        args=args,
    )


# --------------------------------------------------------------------------- Celery


@dataclass(frozen=True)
class CeleryRig:
    server: RedisServer
    home: Path
    module: ModuleType
    env: dict[str, str]

    @property
    def backend(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/1"

    def worker(self, pool: str, concurrency: int) -> CeleryWorker:
        return CeleryWorker(
            env=self.env,
            log=self.home / f"celery-llm-{pool}.log",
            pool=pool,
            concurrency=concurrency,
            app="bench.celery_llm",
        )

    def send(self, contents: Sequence[str]) -> tuple[list[str], list[float]]:
        ids, sent = [], []
        for content in contents:
            sent.append(time.time())
            ids.append(self.module.chat.apply_async(args=(content,)).id)
        return ids, sent

    def flush(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.server.port)
        client.flushall()
        client.close()


def _wait_pool(worker: CeleryWorker, children: int, timeout: float = 60) -> None:
    """Until a prefork worker has its children (their memory is part of the budget)."""
    deadline = time.monotonic() + timeout
    proc = psutil.Process(worker.process.pid)
    while len(proc.children()) < children and time.monotonic() < deadline:
        time.sleep(0.2)


def calibrate_prefork(rig: CeleryRig) -> tuple[float, float]:
    """(parent PSS, one child's PSS) in MB of a warmed prefork worker with two children."""
    rig.flush()
    worker = rig.worker("prefork", 2)
    try:
        client = redis.Redis(host="127.0.0.1", port=rig.server.port, db=1)
        ids, _ = rig.send(_contents(4, uuid.uuid4().hex[:8]))
        _poll(client, ids, _CeleryRead(), timeout=120)
        client.close()
        time.sleep(1)
        parent = psutil.Process(worker.process.pid)
        children = parent.children()
        child_mb = sum(c.memory_full_info().pss for c in children) / len(children) / MB
        return parent.memory_full_info().pss / MB, child_mb
    finally:
        worker.stop()


def run_celery(
    rig: CeleryRig, pool: str, concurrency: int, args: argparse.Namespace
) -> LevelResult:
    rig.flush()
    client = redis.Redis(host="127.0.0.1", port=rig.server.port, db=1)
    read = _CeleryRead()
    run = uuid.uuid4().hex[:8]
    try:
        warm = rig.worker(pool, concurrency)
        try:
            ids, _ = rig.send(_contents(min(concurrency, WARMUP_MAX), run))
            _poll(client, ids, read, timeout=120)
            time.sleep(1)
            sampler = Sampler({"worker": warm.process.pid}, pss=True)
            sampler.record_idle()
            idle = sampler.stats["worker"].idle_rss_mb
        finally:
            warm.stop()

        ids, _ = rig.send(_contents(BACKLOG_PER_SLOT * concurrency, run + "b"))
        worker = rig.worker(pool, concurrency)
        try:
            pids = {"worker": worker.process.pid}
            if rig.server.pid is not None:
                pids["redis"] = rig.server.pid
            sampler = Sampler(pids, pss=True)
            sampler.start()
            backlog = _poll(client, ids, read, timeout=args.timeout)
            sampler.stop()
            sampler.stats["worker"].idle_rss_mb = idle

            contents = _contents(max(1, concurrency // 2), run + "l")
            ids, sent = rig.send(contents)
            finishes = [f for _, f in _poll(client, ids, read, timeout=args.timeout)]
            overheads = overheads_ms(sent, finishes, _delays(contents, args))
        finally:
            worker.stop()
    finally:
        client.close()
    return _summary(
        concurrency=concurrency,
        backlog=backlog,
        sampler=sampler,
        worker="worker",
        overheads=overheads,
        args=args,
    )


# --------------------------------------------------------------------------- model server


class ModelServer:
    def __init__(self, home: Path, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._log = (home / "llm-server.log").open("ab")
        argv = [
            sys.executable, "-m", "bench.llm_server", "--port", str(self.port),
            "--min-seconds", str(args.min_seconds), "--max-seconds", str(args.max_seconds),
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError("bench.llm_server did not answer within 30 s")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._log.close()


# --------------------------------------------------------------------------- report

COLUMNS = (
    ("tasks/s", "tasks_per_s", "{:.1f}"),
    ("% ideal", "efficiency", "{:.0f}"),
    ("worker CPU ms/task", "worker_cpu_ms", "{:.2f}"),
    ("stack CPU ms/task", "stack_cpu_ms", "{:.2f}"),
    ("peak MB", "peak_mb", "{:.0f}"),
    ("KB/in-flight", "kb_per_in_flight", "{:.0f}"),
    ("overhead p50 ms", "overhead_p50_ms", "{:.0f}"),
    ("overhead p99 ms", "overhead_p99_ms", "{:.0f}"),
)


def _value(result: LevelResult, attr: str) -> float:
    if attr == "concurrency":
        return float(result.concurrency)
    if attr == "efficiency":
        return 100 * result.tasks_per_s / result.ideal_per_s
    return float(getattr(result, attr))


Round = dict[tuple[int, str], LevelResult | None]  # None: the phase failed (printed why)


def paired(
    history: Sequence[Round], level: int, theirs: str, attr: str
) -> tuple[list[float], list[float]]:
    """agentprod's and `theirs`' values of `attr` at `level` over the rounds where neither
    phase failed, paired by round."""
    pairs = [
        (_value(ours, attr), _value(other, attr))
        for r in history
        if (ours := r[(level, AGENTPROD)]) is not None and (other := r[(level, theirs)]) is not None
    ]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _print_round(number: int, results: Round) -> None:
    print(f"\n== round {number}")
    print(f"{'level':>5} {'system':<19} {'conc':>5} " + " ".join(f"{c[0]:>10}" for c in COLUMNS))
    for (level, system), r in sorted(results.items()):
        if r is None:
            print(f"{level:>5} {system:<19} {'-':>5} FAILED (see above)")
            continue
        cells = " ".join(f"{fmt.format(_value(r, attr)):>10}" for _, attr, fmt in COLUMNS)
        print(f"{level:>5} {system:<19} {r.concurrency:>5} {cells}")
    sys.stdout.flush()


def _print_summary(history: list[Round], levels: list[int]) -> None:
    print(
        f"\n== summary over {len(history)} round(s): median [min..max]; "
        "ratio = agentprod / celery pool, paired per round"
    )
    for level in levels:
        print(
            f"\n-- concurrency {level} (prefork and @mem: as many children or slots as fit "
            "agentprod's worker memory)"
        )
        print(f"{'metric':<20} " + " ".join(f"{s:>24}" for s in SYSTEMS))
        for label, attr, _ in (*COLUMNS, ("concurrency", "concurrency", "")):
            values = {s: _ran(history, level, s, attr) for s in SYSTEMS}
            print(f"{label:<20} " + " ".join(f"{spread(values[s])!s:>24}" for s in SYSTEMS))
        failed = {s: sum(r[(level, s)] is None for r in history) for s in SYSTEMS}
        if any(failed.values()):
            print(f"{'failed rounds':<20} " + " ".join(f"{failed[s]:>24}" for s in SYSTEMS))
        for label, attr in (("tasks/s ratio", "tasks_per_s"), ("stack CPU ratio", "stack_cpu_ms")):
            cells = [
                f"{spread(ratios(*paired(history, level, s, attr)))!s:>24}" for s in SYSTEMS[1:]
            ]
            print(f"{label:<20} {'':>24} " + " ".join(cells))
    sys.stdout.flush()


def _ran(history: Sequence[Round], level: int, system: str, attr: str) -> list[float]:
    return [_value(r, attr) for rounds in history if (r := rounds[(level, system)]) is not None]


def _order(number: int) -> tuple[str, ...]:
    """Round 1 starts with agentprod (the prefork budget needs its memory); then reverses."""
    return SYSTEMS if number % 2 else SYSTEMS[::-1]


def _phase(
    stack: Stack,
    rig: CeleryRig,
    model: ModelServer,
    system: str,
    level: int,
    budget: dict[int, float],
    prefork_pss: tuple[float, float],
    args: argparse.Namespace,
    peaks: dict[str, dict[int, float]],
) -> LevelResult:
    """One system at one level; agentprod's peak memory sets the budget at that level of
    prefork (`prefork_pss`: its parent's and one child's PSS, MB) and of the `@mem` pools
    (searched with the peaks per slot count their runs measured, `peaks`)."""
    if system == AGENTPROD:
        result = run_agentprod(stack, model.url, level, args)
        budget[level] = result.peak_mb
        return result
    pool = system.removeprefix("celery-")
    if (pool == "prefork" or pool.endswith(SAME_MEMORY)) and level not in budget:
        raise RuntimeError("no memory budget: agentprod's phase at this level failed")
    if pool.endswith(SAME_MEMORY):
        pool = pool.removesuffix(SAME_MEMORY)
        return _fit_to_budget(rig, pool, level, budget[level], args, peaks.setdefault(pool, {}))
    conc = prefork_concurrency(budget[level], *prefork_pss) if pool == "prefork" else level
    result = run_celery(rig, pool, conc, args)
    if pool in SIZED_POOLS:
        peaks.setdefault(pool, {})[conc] = result.peak_mb
    return result


def _fit_to_budget(
    rig: CeleryRig,
    pool: str,
    level: int,
    budget_mb: float,
    args: argparse.Namespace,
    peaks: dict[int, float],
) -> LevelResult:
    """The run of `pool` with the most slots (at most `level`) whose peak PSS fits
    `budget_mb`, searched with at most FIT_RUNS runs; every run's peak joins `peaks`."""
    runs: dict[int, LevelResult] = {}
    for _ in range(FIT_RUNS):
        slots = fitted_slots(budget_mb, peaks, level)
        if slots in runs:
            break
        runs[slots] = result = run_celery(rig, pool, slots, args)
        peaks[slots] = result.peak_mb
        verdict = "fits" if fits_budget(result.peak_mb, budget_mb) else "over"
        print(
            f"    celery-{pool}{SAME_MEMORY}: {slots} slots, peak {result.peak_mb:.1f} MB "
            f"for a budget of {budget_mb:.1f} MB ({verdict}), {result.tasks_per_s:.1f} tasks/s",
            flush=True,
        )
    return runs[best_fit({n: r.peak_mb for n, r in runs.items()}, budget_mb)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--levels", default="64,256,1024", help="agentprod concurrency levels")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="model server delay")
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=600, help="per phase, seconds")
    parser.add_argument("--quick", action="store_true", help="1 round at concurrency 64")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.levels = 1, "64"
    try:
        levels = [int(level) for level in args.levels.split(",")]
    except ValueError:
        parser.error("--levels must be comma-separated integers, e.g. 64,256,1024")
    if args.rounds < 1 or any(not 1 <= level <= 1024 for level in levels):
        parser.error("--rounds must be at least 1 and every --levels value in 1..1024")

    import celery

    print(
        f"machine: {_machine()}; celery {celery.__version__}; model server delay "
        f"{args.min_seconds}-{args.max_seconds} s; levels {levels}; {args.rounds} round(s)",
        flush=True,
    )
    history: list[Round] = []
    agentprod_failed = False
    with real_stack() as stack:
        model = ModelServer(stack.home, args)
        server = RedisServer(home=stack.home / "celery-redis", port=free_port())
        server.start()
        try:
            env = _celery_env(server) | {
                "OPENAI_BASE_URL": model.url,
                "OPENAI_API_KEY": "bench",
                "LLM_MODEL_FAST": MODEL,
            }
            os.environ.update(env)
            rig = CeleryRig(server, stack.home, importlib.import_module("bench.celery_llm"), env)
            parent_mb, child_mb = calibrate_prefork(rig)
            print(f"prefork calibration: parent {parent_mb:.1f} MB, child {child_mb:.1f} MB PSS")
            budget: dict[int, float] = {}
            peaks: dict[str, dict[int, float]] = {}
            for number in range(1, args.rounds + 1):
                results: Round = {}
                for level in levels:
                    for system in _order(number):
                        cpu0 = model.cpu_seconds()
                        try:
                            result = _phase(
                                stack,
                                rig,
                                model,
                                system,
                                level,
                                budget,
                                (parent_mb, child_mb),
                                args,
                                peaks,
                            )
                        except (TimeoutError, RuntimeError) as error:
                            # a phase that lost a task is a result of its own, not the run's end
                            print(f"  round {number} level {level} {system}: FAILED: {error}")
                            results[(level, system)] = None
                            agentprod_failed |= system == AGENTPROD
                            continue
                        results[(level, system)] = result
                        print(
                            f"  round {number} level {level} {system}: "
                            + ", ".join(
                                f"{label} {fmt.format(_value(result, attr))}"
                                for label, attr, fmt in COLUMNS
                            )
                            + f", concurrency {result.concurrency}, model server CPU "
                            f"{model.cpu_seconds() - cpu0:.1f} s",
                            flush=True,
                        )
                history.append(results)
                _print_round(number, results)
        finally:
            server.stop()
            model.stop()
    _print_summary(history, levels)
    if args.json:
        data = {
            "machine": _machine(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "rounds": [
                [
                    {"level": lv, "system": s} | (asdict(r) if r else {"failed": True})
                    for (lv, s), r in rounds.items()
                ]
                for rounds in history
            ],
        }
        args.json.write_text(json.dumps(data, indent=2))
    if agentprod_failed:
        sys.exit("agentprod lost tasks in a phase (FAILED above)")


if __name__ == "__main__":
    main()
